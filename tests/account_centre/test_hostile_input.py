"""Hostile input to the account centre's JSON and path parameters is a 400/404, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import csrf_token

BODIES = ["", "[", "[]", "null", '{"id": 1}', '{"id": "x", "response": 5}',
          '{"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}',
          '{"id": "' + "A" * 20000 + '"}']


@pytest.mark.parametrize("body", BODIES)
def test_passkey_registration_rejects_garbage(app: Flask, signed_in: FlaskClient,
                                              body: str) -> None:
    token = csrf_token(signed_in.get("/account/security").get_data(as_text=True))
    headers = {"X-CSRFToken": token, "Content-Type": "application/json"}
    options = signed_in.post("/account/two-factor/passkey/options", headers=headers)
    assert options.status_code == 200 and options.get_json()["challenge"]
    assert options.headers["Cache-Control"] == "no-store"
    response = signed_in.post("/account/two-factor/passkey", data=body, headers=headers)
    assert response.status_code == 400


def test_passkey_endpoints_need_csrf(app: Flask, signed_in: FlaskClient) -> None:
    assert signed_in.post("/account/two-factor/passkey/options").status_code == 400


def test_second_step_passkey_without_pending_session(app: Flask, client: FlaskClient,
                                                    user: Any) -> None:
    token = csrf_token(client.get("/login").get_data(as_text=True))
    headers = {"X-CSRFToken": token, "Content-Type": "application/json"}
    assert client.post("/account/second-factor/passkey/options",
                       headers=headers).status_code == 404
    assert client.post("/account/second-factor/passkey", data="{}",
                       headers=headers).status_code == 400


@pytest.mark.parametrize("path", [
    "/account/sessions/" + "x" * 5000 + "/end",
    "/account/apps/%ff%fe/revoke",
    "/account/ways/99999999/unbind",
    "/account/two-factor/99999999/remove",
])
def test_unknown_targets_are_404(app: Flask, signed_in: FlaskClient, path: str) -> None:
    token = csrf_token(signed_in.get("/account/security").get_data(as_text=True))
    response = signed_in.post(path, data={"csrf_token": token})
    assert response.status_code == 404


def test_a_nul_in_a_target_is_400(app: Flask, signed_in: FlaskClient) -> None:
    """The request guard refuses NUL anywhere in a request (idp/input_guard.py)."""
    token = csrf_token(signed_in.get("/account/security").get_data(as_text=True))
    response = signed_in.post("/account/apps/%00%ff/revoke", data={"csrf_token": token})
    assert response.status_code == 400


@pytest.mark.parametrize("body", ["", "[", "null", '{"confirm": "true"}'])
def test_deletion_api_garbage_without_token_is_401(client: FlaskClient, body: str) -> None:
    response = client.post("/account/api/deletion", data=body,
                           headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
