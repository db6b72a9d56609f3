"""Bodies over the 64 kB limit (idp/__init__.py, MAX_CONTENT_LENGTH) are answered 413 in the
route's usual shape. The error page once asked the form for `ui_locales` while choosing its
language, which read the refused body again and turned the 413 into a bare 500."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

OVER_LIMIT = "x" * (65 * 1024)


@pytest.mark.parametrize("path", ["/login", "/register", "/reset", "/oauth/authorize"])
def test_an_oversized_form_to_a_page_is_413_with_the_error_page(
    client: FlaskClient, path: str
) -> None:
    response = client.post(path, data={"identifier": OVER_LIMIT, "ui_locales": "zh-CN"})
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/html"
    assert response.headers["X-Request-Id"] in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_an_oversized_form_to_a_protocol_endpoint_is_413_json__rfc6749_5_2(
    client: FlaskClient, website: Any, path: str
) -> None:
    response = client.post(path, data={"grant_type": "client_credentials", "x": OVER_LIMIT})
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["error"] == "invalid_request"
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_an_oversized_json_body_is_413_json(client: FlaskClient) -> None:
    response = client.post(
        "/wechat/phone", json={"code": OVER_LIMIT}, headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"] == "invalid_request"
