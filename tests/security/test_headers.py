"""Browser-facing hardening: CSP without inline script, no framing, referrer policy, HSTS on
https, no-store on token responses (RFC 6749 §5.1), cookie flags."""

from typing import Any

import pytest

from idp import create_app
from idp.extensions import db
from tests.conftest import CodeFlow, IsolatedClient, csrf_token, login


def test_login_and_consent_pages_cannot_be_framed_or_run_inline_script(flow: CodeFlow) -> None:
    for response in (flow.browser.get("/login"), flow.authorize(consent=None)):
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert b"<script>" not in response.data and b" onclick=" not in response.data


def test_token_and_userinfo_responses_are_not_cached__rfc6749_5_1(flow: CodeFlow) -> None:
    tokens = flow.tokens()
    userinfo = flow.browser.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.headers["Cache-Control"] == "no-store"
    error = flow.browser.post("/oauth/token", data={"grant_type": "nope"})
    assert error.headers["Cache-Control"] == "no-store"


def test_no_hsts_on_a_loopback_http_issuer(client: Any) -> None:
    assert "Strict-Transport-Security" not in client.get("/login").headers


@pytest.fixture
def https_app(app_config: dict[str, Any]) -> Any:
    application = create_app({**app_config, "IDP_ISSUER": "https://id.example.com"})
    application.test_client_class = IsolatedClient
    with application.app_context():
        db.create_all()
        yield application
        db.session.remove()
        db.engine.dispose()


def test_https_issuer_sends_hsts_and_secure_cookies(https_app: Any) -> None:
    from idp.accounts.seed import create_password_user

    create_password_user("+8613800138000", "correct horse battery")
    browser = https_app.test_client()
    response = browser.get("/login", base_url="https://id.example.com")
    assert "max-age=" in response.headers["Strict-Transport-Security"]
    page = browser.get("/login", base_url="https://id.example.com")
    login_response = browser.post(
        "/login",
        base_url="https://id.example.com",
        headers={"Referer": "https://id.example.com/login"},  # what a browser sends same-origin
        data={
            "identifier": "+8613800138000",
            "password": "correct horse battery",
            "csrf_token": csrf_token(page.get_data(as_text=True)),
        },
    )
    cookie = [c for c in login_response.headers.getlist("Set-Cookie") if "idp_session=" in c][0]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_locale_cookies_are_secure_on_an_https_issuer(https_app: Any) -> None:
    """Issue 23 item 6: the https issuer decides, as for the session cookie, even when the
    request reaching the app is plain http (TLS ended at a proxy, `IDP_PROXY_FIX` unset)."""
    browser = https_app.test_client()
    for path, name in (("/locale/zh_CN", "idp_locale="), ("/login?ui_locales=zh-CN",
                                                          "idp_ui_locale=")):
        response = browser.get(path, base_url="http://id.example.com")
        cookie = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(name)][0]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie


def test_errors_never_show_a_stack_trace(client: Any, app: Any) -> None:
    @app.get("/oauth/_boom")
    def boom() -> None:
        raise RuntimeError("internal detail that must not leak")

    response = client.get("/oauth/_boom")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "server_error" and body["request_id"]
    assert b"internal detail" not in response.data and b"Traceback" not in response.data


def test_user_session_is_ended_server_side_at_logout(client: Any, user: Any) -> None:
    login(client, "+8613800138000")
    stolen = client.get_cookie("idp_session").value
    client.post(
        "/logout", data={"csrf_token": csrf_token(client.get("/account").get_data(as_text=True))}
    )
    client.set_cookie("idp_session", stolen)  # a copied cookie is dead too
    assert client.get("/account").status_code == 302
