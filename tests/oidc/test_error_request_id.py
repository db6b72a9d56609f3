"""Every JSON error body carries `request_id`, equal to the X-Request-Id header, as
docs/DEPLOYMENT.md promises ("Finding a request in the logs"): on each protocol endpoint, for
Authlib's OAuth errors (RFC 6749 §5.2 lets a server add members), the resource protector's
RFC 6750 §3.1 errors, and the app's own."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor

CASES = [
    # (method, path, form, headers, status)
    ("POST", "/oauth/token", {"grant_type": "authorization_code", "code": "x"}, {}, 401),
    ("POST", "/oauth/token", {"grant_type": "password", "client_id": "nobody"}, {}, 400),
    ("POST", "/oauth/token", {"grant_type": "client_credentials"},
     {"Authorization": "Basic bm9ib2R5Om5vdGhpbmc="}, 401),
    ("POST", "/oauth/revoke", {"token": "x"}, {}, 401),
    ("POST", "/oauth/introspect", {"token": "x"}, {}, 401),
    ("GET", "/oauth/userinfo", None, {}, 401),
    ("GET", "/oauth/userinfo", None, {"Authorization": "Bearer not-a-token"}, 401),
    ("POST", "/oauth/userinfo", {}, {"Authorization": "Bearer not-a-token"}, 401),
    ("POST", "/wechat/phone", None, {"Authorization": "Bearer not-a-token"}, 401),
    ("GET", "/oauth/token", None, {}, 405),
    ("GET", "/oauth/nothing-here", None, {}, 404),
]


@pytest.mark.parametrize(("method", "path", "form", "headers", "status"), CASES)
def test_json_error_bodies_carry_the_request_id__rfc6749_5_2(
    client: FlaskClient, website: Any, method: str, path: str, form: Any, headers: Any,
    status: int,
) -> None:
    response = client.open(path, method=method, data=form, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert isinstance(body.get("error"), str), body
    assert body["request_id"] and body["request_id"] == response.headers["X-Request-Id"]


def test_the_proxys_request_id_is_echoed_in_the_error_body(app: Flask, client: FlaskClient) -> None:
    app.config["IDP_PROXY_FIX"] = 1  # a proxy in front sets X-Request-Id (docs/DEPLOYMENT.md)
    response = client.post(
        "/oauth/token", data={"grant_type": "nope"}, headers={"X-Request-Id": "lb-1234567890"}
    )
    assert response.status_code == 400
    assert response.get_json()["request_id"] == "lb-1234567890"


def test_a_callers_request_id_is_ignored_without_a_proxy(app: Flask, client: FlaskClient) -> None:
    """Issue 23 item 6: with no proxy configured, X-Request-Id comes from whoever calls, and the
    id is written into the audit trail: a fresh one is made instead."""
    forged = "forged-by-the-caller"
    response = client.post("/oauth/token", data={"grant_type": "nope"},
                           headers={"X-Request-Id": forged})
    assert response.headers["X-Request-Id"] != forged
    assert response.get_json()["request_id"] == response.headers["X-Request-Id"]
    with app.test_request_context("/account", headers={"X-Request-Id": forged}):
        app.preprocess_request()  # the app's own before-request hooks
        row = audit.record("account.test", Actor.system("test"), None)
    db.session.commit()
    assert row.request_id and row.request_id != forged


def test_an_invalid_grant_carries_the_request_id__rfc6749_5_2(
    client: FlaskClient, website: Any
) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": "unknown",
              "redirect_uri": "https://rp.example/callback"},
        auth=(website[0].client_id, website[1]),
    )
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_grant"
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_a_successful_response_is_left_alone(client: FlaskClient, website: Any) -> None:
    assert "request_id" not in client.get("/.well-known/openid-configuration").get_json()
