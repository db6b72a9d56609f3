"""The hot endpoints served in front of Flask (`idp/oidc/hot_paths`): the same contract as every
other answer of the IdP — methods, the NUL guard, sizes, repeated parameters, the request id,
the security headers, metrics — and the spec's error shapes (RFC 6750 §3, RFC 7662 §2.3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

HOT = ["/oauth/jwks", "/.well-known/openid-configuration",
       "/.well-known/oauth-authorization-server", "/oauth/userinfo", "/oauth/introspect"]


def test_the_hot_paths_are_not_flask_routes_too(app: Any) -> None:
    """One implementation of each route: no Flask view shadows a hot path."""
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert not rules & set(HOT)


@pytest.mark.parametrize("path", HOT)
def test_every_answer_carries_the_security_headers_and_request_id(
    app: Any, client: FlaskClient, path: str
) -> None:
    app.config["IDP_PROXY_FIX"] = 1  # a proxy's request id is trusted only behind one
    response = client.get(path, headers={"X-Request-Id": "trace-0123456789"})
    assert response.headers["X-Request-Id"] == "trace-0123456789"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_hsts_on_an_https_issuer(app: Any, client: FlaskClient) -> None:
    app.config["IDP_ISSUER"] = "https://id.example.com"
    assert "max-age" in client.get("/oauth/jwks").headers["Strict-Transport-Security"]


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("POST", "/oauth/jwks", "GET, HEAD, OPTIONS"),
    ("DELETE", "/.well-known/openid-configuration", "GET, HEAD, OPTIONS"),
    ("PUT", "/oauth/userinfo", "GET, HEAD, OPTIONS, POST"),
    ("GET", "/oauth/introspect", "OPTIONS, POST"),
])
def test_another_method_is_405_with_allow__rfc9110_15_5_6(
    client: FlaskClient, method: str, path: str, allow: str
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    body = response.get_json()
    assert body["error"] == "invalid_request" and body["request_id"]


def test_head_and_options__rfc9110_9_3_2(client: FlaskClient) -> None:
    get = client.get("/oauth/jwks")
    head = client.head("/oauth/jwks")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(get.data))
    options = client.options("/oauth/jwks")
    assert options.status_code == 200 and "GET" in options.headers["Allow"]


@pytest.mark.parametrize("where", ["query", "header", "form"])
def test_a_nul_anywhere_is_400(client: FlaskClient, website: Any, where: str) -> None:
    website_client, secret = website
    if where == "query":
        response = client.get("/oauth/jwks?x=%00")
    elif where == "header":
        response = client.get("/oauth/userinfo", headers={"Authorization": "Bearer a\x00b"})
    else:
        response = client.post("/oauth/introspect", data={"token": "a\x00b"},
                               auth=(website_client.client_id, secret))
    assert response.status_code == 400
    assert response.get_json()["error_description"] == "The request contains a NUL character."


def test_a_parameter_sent_twice_is_refused__rfc6749_3_2(
    client: FlaskClient, website: Any
) -> None:
    website_client, secret = website
    response = client.post(
        "/oauth/introspect", data="token=a&token=b", auth=(website_client.client_id, secret),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_a_body_over_the_limit_is_413(client: FlaskClient, website: Any) -> None:
    website_client, secret = website
    response = client.post("/oauth/introspect", data={"token": "x" * 70_000},
                           auth=(website_client.client_id, secret))
    assert response.status_code == 413


def test_a_body_that_is_not_utf8_is_400(client: FlaskClient, website: Any) -> None:
    website_client, secret = website
    response = client.post("/oauth/introspect", data=b"token=\xff\xfe",
                           auth=(website_client.client_id, secret),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_userinfo_without_credentials_is_a_plain_bearer_challenge__rfc6750_3_1(
    client: FlaskClient,
) -> None:
    response = client.get("/oauth/userinfo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("authorization", ["Basic abc", "Bearer", "Bearer   "])
def test_userinfo_with_another_scheme_never_has_an_empty_description__rfc6750_3(
    client: FlaskClient, authorization: str
) -> None:
    response = client.get("/oauth/userinfo", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["error_description"]


def test_userinfo_with_a_bad_token_says_invalid_token__rfc6750_3_1(client: FlaskClient) -> None:
    response = client.get("/oauth/userinfo", headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_a_tampered_signature_or_header_is_refused__rfc7515_5_2(flow: Any) -> None:
    token = flow.tokens()["access_token"]
    header, payload, signature = token.split(".")
    assert flow.browser.get("/oauth/userinfo", headers={
        "Authorization": f"Bearer {token}"}).status_code == 200
    forged_signature = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    import base64
    none_header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "typ": "at+jwt"}).encode()).decode().rstrip("=")
    for forged in (f"{header}.{payload}.{forged_signature}", f"{none_header}.{payload}.",
                   f"{none_header}.{payload}.{signature}", f"{header}.{payload}x.{signature}"):
        bearer = {"Authorization": f"Bearer {forged}"}
        assert flow.browser.get("/oauth/userinfo", headers=bearer).status_code == 401, forged


def test_an_id_token_is_not_an_access_token__rfc9068_4(flow: Any) -> None:
    id_token = flow.tokens()["id_token"]
    response = flow.browser.get("/oauth/userinfo", headers={"Authorization": f"Bearer {id_token}"})
    assert response.status_code == 401


def test_an_unexpected_failure_is_a_500_with_the_request_id(
    app: Any, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.oidc.hot_paths import read_endpoints

    def broken(_request: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(read_endpoints.ROUTES["/oauth/jwks"][1], "GET", broken)
    response = client.get("/oauth/jwks")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "server_error" and body["request_id"]
    assert "boom" not in response.get_data(as_text=True)


def test_hot_answers_are_counted_in_the_request_metrics(client: FlaskClient) -> None:
    from idp.observability.metrics import http_requests

    def count() -> float:
        return http_requests.labels(endpoint="oidc.jwks", method="GET", status=200)._value.get()

    before = count()
    client.get("/oauth/jwks")
    assert count() == before + 1


def test_a_callers_request_id_is_ignored_without_a_proxy(client: FlaskClient) -> None:
    response = client.get("/oauth/jwks", headers={"X-Request-Id": "trace-0123456789"})
    assert response.headers["X-Request-Id"] != "trace-0123456789"


@pytest.mark.parametrize(("base_url", "refused"), [
    ("http://id.example.com", True), ("https://id.example.com", False),
    ("http://127.0.0.1:5000", False), ("http://localhost", False),
])
def test_plain_http_is_refused_but_on_loopback__rfc6749_3_1(
    client: FlaskClient, website: Any, base_url: str, refused: bool
) -> None:
    """Authlib's transport rule on the hot paths, asked once per origin and answered alike on
    every request (`authlib_bridge`): twice each, so the remembered answer is the one given."""
    website_client, secret = website
    for _ in range(2):
        response = client.post("/oauth/introspect", data={"token": "x"}, base_url=base_url,
                               auth=(website_client.client_id, secret))
        assert (response.get_json().get("error") == "insecure_transport") is refused
        assert response.status_code == (400 if refused else 200)


def test_revocation_on_plain_http_is_refused_not_a_500__rfc6749_3_1(
    client: FlaskClient, website: Any
) -> None:
    """The Flask-served revocation endpoint (RFC 7009) answers the same refusal."""
    website_client, secret = website
    response = client.post("/oauth/revoke", data={"token": "x"}, base_url="http://id.example.com",
                           auth=(website_client.client_id, secret))
    assert response.status_code == 400
    assert response.get_json()["error"] == "insecure_transport"
