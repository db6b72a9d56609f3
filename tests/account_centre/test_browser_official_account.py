# ruff: noqa: F811 - `served` is the fixture of tests/account_centre/test_browser.py
"""Binding WeChat through the Official Account in headless Chromium that says it is WeChat's
browser (its User-Agent, set by chromedriver's options): the account centre, the fake WeChat's
web authorization (snsapi_base, silent) and back, the ways-in list, then unbinding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

# Through test_browser: it skips the module when selenium or Chromium is missing.
from tests.account_centre.test_browser import (  # noqa: F401 - the `served` fixture
    By,
    Served,
    _flash,
    _go,
    _no_console_errors,
    _shot,
    _sign_in,
    phone_browser,
    served,
)

OA_APPID = "wxc00000000000centre"
OA_SECRET = "oa-secret-centre-00000000000000001"
OA_NAME = "Our Official Account"
WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/en"
)


@pytest.fixture(scope="module")
def official_account(served: Served) -> str:
    from idp.wechat.apps import create_wechat_app

    served.wechat.control.register_app(OA_APPID, OA_SECRET, kind="officialaccount")
    with served.app.app_context():
        create_wechat_app("officialaccount", OA_APPID, OA_SECRET, name=OA_NAME)
    return OA_APPID


@pytest.fixture(scope="module")
def wechat_driver() -> Iterator[Any]:
    yield from phone_browser(WECHAT_UA)


def test_bind_wechat_through_the_official_account_then_unbind(
    wechat_driver: Any, served: Served, official_account: str
) -> None:
    browser = wechat_driver
    browser.get(served.url + "/healthz")
    browser.delete_all_cookies()
    assert "MicroMessenger" in browser.execute_script("return navigator.userAgent")
    _account, phone = served.user()
    _sign_in(browser, served, phone)
    served.wechat.control.set_browser_user(OA_APPID, user="browser-oa", unionid="u-browser-oa")
    button = browser.find_element(By.ID, "bind-wechat")
    assert button.get_attribute("data-via") == "officialaccount"
    _go(browser, By.ID, "bind-wechat")  # WeChat's silent authorization, and back
    assert "WeChat added" in _flash(browser)
    ways = browser.find_element(By.ID, "ways").text
    assert "WeChat (Official Account)" in ways and OA_NAME in ways
    _shot(browser, "oa-01-wechat-bound")
    _go(browser, By.CSS_SELECTOR, "li.way[data-kind=wechat_openid] button")
    assert "no longer signs you in" in _flash(browser)
    assert OA_NAME not in browser.find_element(By.ID, "ways").text
    _go(browser, By.CSS_SELECTOR, "li.way[data-kind=wechat_unionid] button")
    assert "WeChat" not in browser.find_element(By.ID, "ways").text
    _shot(browser, "oa-02-wechat-unbound")
    _no_console_errors(browser)
