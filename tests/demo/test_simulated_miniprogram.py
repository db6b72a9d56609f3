"""The demo website's simulated mini-program page: wx.login → token exchange (CONTRACT §5),
getPhoneNumber → /wechat/phone (CONTRACT §6), against the fake WeChat, over real HTTP."""

from __future__ import annotations

import re

import pytest
import requests

from idp.oidc.discovery import TOKEN_EXCHANGE
from tests.demo.conftest import Browser, DemoStack


def last_status(html: str) -> str:
    match = re.search(r'id="last-status">([^<]*)<', html)
    assert match, html[:2000]
    return match.group(1)


def require_token_exchange(stack: DemoStack) -> None:
    metadata = requests.get(f"{stack.idp_url}/.well-known/openid-configuration", timeout=10).json()
    if TOKEN_EXCHANGE not in metadata["grant_types_supported"]:
        pytest.skip("the WeChat token-exchange grant is not registered in this build yet")


def test_wx_login_asks_the_fake_for_a_code_and_calls_the_token_endpoint(
    demo_stack: DemoStack, browser: Browser
) -> None:
    page = browser.get(f"{demo_stack.rp_url}/miniprogram")

    result = browser.submit(page, "/miniprogram/login", user="alice")

    assert result.url == f"{demo_stack.rp_url}/miniprogram"
    assert "POST /oauth/token (urn:ietf:params:oauth:grant-type:token-exchange)" in result.text
    assert last_status(result.text) in ("200", "400")  # 400 until the grant lands


def test_wx_login_then_phone_binding__contract_5_and_6(
    demo_stack: DemoStack, browser: Browser
) -> None:
    require_token_exchange(demo_stack)
    page = browser.get(f"{demo_stack.rp_url}/miniprogram")

    logged_in = browser.submit(page, "/miniprogram/login", user="alice")
    assert last_status(logged_in.text) == "200", logged_in.text[:3000]
    assert "Stored tokens" in logged_in.text

    bound = browser.submit(logged_in, "/miniprogram/phone", phone="13800138000")
    assert last_status(bound.text) == "200", bound.text[:3000]
    assert "+8613800138000" in bound.text

    refreshed = browser.submit(bound, "/miniprogram/refresh")
    assert last_status(refreshed.text) == "200", refreshed.text[:3000]


def test_buttons_before_wx_login_say_what_to_do(demo_stack: DemoStack, browser: Browser) -> None:
    page = browser.get(f"{demo_stack.rp_url}/miniprogram")

    result = browser.submit(page, "/miniprogram/phone")

    assert "press wx.login first" in result.text
