"""The IdP wired to a real fake WeChat on loopback: two mini-programs and one website app,
registered on both sides, and the mini-program client of CONTRACT §5."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask.testing import FlaskClient

from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.wechat.apps import create_wechat_app
from idp.wechat.fake import FakeWeChatControl, FakeWeChatServer
from idp.wechat_login.token_exchange import JS_CODE_TOKEN_TYPE
from tests.conftest import base_config

MINI_APPID = "wxa000000000000001"
MINI_SECRET = "mini-secret-0123456789abcdef0001"
OTHER_MINI_APPID = "wxa000000000000002"
OTHER_MINI_SECRET = "mini-secret-0123456789abcdef0002"
WEB_APPID = "wxb000000000000001"
WEB_SECRET = "web-secret-fedcba98765432100001"
SECRETS = (MINI_SECRET, OTHER_MINI_SECRET, WEB_SECRET)
MINI_SCOPE = "openid profile phone wechat offline_access"
# Generous for loopback; the timeout test arms a longer delay than the read timeout.
WECHAT_TIMEOUT = (1.0, 1.5)


@pytest.fixture
def app_config(tmp_path: Any, database_url: str, fake_wechat: FakeWeChatServer) -> dict[str, Any]:
    config = base_config(tmp_path, database_url)
    config["IDP_WECHAT_API_BASE"] = fake_wechat.base_url
    config["IDP_WECHAT_OPEN_BASE"] = fake_wechat.base_url
    config["IDP_WECHAT_TIMEOUT"] = WECHAT_TIMEOUT
    return config


@pytest.fixture
def control(fake_wechat: FakeWeChatServer) -> FakeWeChatControl:
    """The fake, reset, with its apps; the same apps registered in the IdP (see `wechat_apps`)."""
    fake_wechat.control.register_app(MINI_APPID, MINI_SECRET, kind="miniprogram")
    fake_wechat.control.register_app(OTHER_MINI_APPID, OTHER_MINI_SECRET, kind="miniprogram")
    fake_wechat.control.register_app(WEB_APPID, WEB_SECRET, kind="website")
    return fake_wechat.control


@pytest.fixture
def wechat_apps(app: Any, control: FakeWeChatControl) -> None:
    create_wechat_app("miniprogram", MINI_APPID, MINI_SECRET, name="Mini A")
    create_wechat_app("miniprogram", OTHER_MINI_APPID, OTHER_MINI_SECRET, name="Mini B")
    create_wechat_app("website", WEB_APPID, WEB_SECRET, name="Website login")


@pytest.fixture
def mini_client(make_client: Any, wechat_apps: None) -> Any:
    """Registered exactly as CONTRACT §5 says: public, one appid, the token-exchange grant."""
    client, secret = make_client(
        name="Mini A", public=True, wechat_appid=MINI_APPID, grant_types=[TOKEN_EXCHANGE]
    )
    assert secret is None
    return client


@pytest.fixture
def other_mini_client(make_client: Any, wechat_apps: None) -> Any:
    client, _ = make_client(
        name="Mini B", public=True, wechat_appid=OTHER_MINI_APPID, grant_types=[TOKEN_EXCHANGE]
    )
    return client


def exchange(
    browser: FlaskClient, client: Any, js_code: str, scope: str | None = MINI_SCOPE, **extra: Any
) -> Any:
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "client_id": client.client_id,
        "subject_token": js_code,
        "subject_token_type": JS_CODE_TOKEN_TYPE,
        "scope": scope,
        **extra,
    }
    return browser.post("/oauth/token", data={k: v for k, v in data.items() if v is not None})


def mini_login(
    browser: FlaskClient, control: FakeWeChatControl, client: Any, user: str, **extra: Any
) -> dict[str, Any]:
    issued = control.issue_js_code(client.wechat_appid, user=user)
    response = exchange(browser, client, issued.code, **extra)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def bind_phone(browser: FlaskClient, access_token: str, body: Any) -> Any:
    return browser.post(
        "/wechat/phone", json=body, headers={"Authorization": f"Bearer {access_token}"}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def scan_qr(browser: FlaskClient, next_url: str | None = None) -> str:
    """Clicks "Sign in with WeChat", lets the fake play the queued user, and returns the callback
    path (with its query) that WeChat sends the browser back to."""
    start = browser.get("/login/wechat", query_string={"next": next_url} if next_url else None)
    assert start.status_code == 302, start.get_data(as_text=True)[:300]
    answer = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text[:300]
    location = urlsplit(answer.headers["Location"])
    assert location.path == "/login/wechat/callback"
    return f"{location.path}?{location.query}"
