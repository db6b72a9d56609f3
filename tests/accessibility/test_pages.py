"""The pages people see on the way to a relying party, in real headless Chromium at 390×844 and in
both languages: axe-core finds no serious or critical WCAG 2.1 A/AA violation, nothing is wider
than the screen, and `<html lang>` is the language of the page (WCAG 3.1.1).

The admin pages get the same check from tests/admin/test_browser.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from idp import create_app
from idp.extensions import db
from idp.wechat.fake import FakeWeChatServer
from tests.accessibility.axe import Auditor
from tests.accessibility.chromium import PHONE, page_width, screen_width, start_chromium
from tests.conftest import PASSWORD, base_config, pkce_pair
from tests.page_waits import page_replaced

WEB_APPID = "wxb0000000000000a1"
WEB_SECRET = "web-secret-accessibility-00000001"
PHONE_NUMBER = "+8613800138001"
LANGUAGES = [("en", "en"), ("zh_CN", "zh-CN")]


@dataclass
class Served:
    app: Flask
    url: str
    wechat: FakeWeChatServer
    client_id: str
    redirect_uri: str


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, fake_wechat_server: FakeWeChatServer
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("accessibility")
    wechat = fake_wechat_server
    wechat.control.reset()
    wechat.control.register_app(WEB_APPID, WEB_SECRET, kind="website")
    apps: list[Flask] = []  # the app is built once the port (its issuer) is known
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, lambda environ, start: apps[0](environ, start), threaded=True
    )
    url = f"http://127.0.0.1:{server.server_port}"
    config = base_config(tmp, f"sqlite:///{tmp / 'idp.sqlite3'}")
    config["IDP_ISSUER"] = url
    config["IDP_WECHAT_API_BASE"] = wechat.base_url
    config["IDP_WECHAT_OPEN_BASE"] = wechat.base_url
    app = create_app(config)
    apps.append(app)
    redirect_uri = url + "/healthz"  # a loopback page the browser can load after consent
    with app.app_context():
        db.create_all()
        client_id = _seed(redirect_uri)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(app, url, wechat, client_id, redirect_uri)
    finally:
        server.shutdown()
        thread.join(5)
        with app.app_context():
            db.engine.dispose()


def _seed(redirect_uri: str) -> str:
    from idp.accounts.seed import create_password_user
    from idp.oidc.clients import create_client
    from idp.wechat.apps import create_wechat_app

    create_password_user(PHONE_NUMBER, PASSWORD, name="Alice", email="alice@example.com")
    create_wechat_app("website", WEB_APPID, WEB_SECRET, name="Website login")
    client, _secret = create_client(
        name="Shop", redirect_uris=[redirect_uri], scope="openid profile phone email"
    )
    db.session.commit()
    return client.client_id


@pytest.fixture
def driver() -> Iterator[Any]:
    chromium = start_chromium(*PHONE)
    try:
        yield chromium
    finally:
        chromium.quit()


class Visit:
    """One browser, one language: every page shown is audited."""

    def __init__(self, driver: Any, served: Served, lang: str) -> None:
        self.driver, self.served, self.lang = driver, served, lang
        self.auditor = Auditor()

    def check(self) -> None:
        from selenium.webdriver.common.by import By

        html = self.driver.find_element(By.TAG_NAME, "html")
        assert html.get_attribute("lang") == self.lang, self.driver.current_url
        assert screen_width(self.driver) == PHONE[0]
        assert page_width(self.driver) <= PHONE[0], f"wider than a phone: {self.driver.current_url}"
        self.auditor.audit(self.driver)

    def open(self, path: str) -> None:
        self.driver.get(self.served.url + path)
        self.check()

    def fill(self, **fields: str) -> None:
        from selenium.webdriver.common.by import By

        for name, value in fields.items():
            field = self.driver.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)

    def tick(self, name: str) -> None:
        from selenium.webdriver.common.by import By

        box = self.driver.find_element(By.NAME, name)
        if not box.is_selected():
            box.click()

    def submit(self, css: str = "form button[type=submit]") -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        old_page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, css).click()
        WebDriverWait(self.driver, 10).until(page_replaced(old_page))
        self.check()


# The login page has two forms, the SMS code first: these visits use the password form.
PASSWORD_FORM = "form[action$='/login'] button[type=submit]"


@pytest.mark.parametrize(("locale", "lang"), LANGUAGES)
def test_sign_in_pages_pass_axe__wcag_2_1_aa(
    served: Served, driver: Any, locale: str, lang: str
) -> None:
    visit = Visit(driver, served, lang)
    driver.get(f"{served.url}/locale/{locale}?next=/login")
    visit.check()  # the login page, with its "Sign in with WeChat" button

    visit.fill(identifier=PHONE_NUMBER, password="not the password")
    visit.submit(PASSWORD_FORM)  # the same page with its error

    visit.open("/register")
    visit.fill(phone="12")
    visit.submit()  # "Please enter a valid phone number."
    visit.fill(phone="+8613800138999")
    visit.submit()  # the code page
    visit.fill(code="000000", password="a long enough password")
    visit.tick("accept_terms")
    # "That code is not right or has expired."
    visit.submit("form[action$='/register/confirm'] button[type=submit]")

    visit.open("/reset")
    visit.open("/no-such-page")  # the 404 page
    visit.open("/oauth/authorize?client_id=nobody&response_type=code")  # the protocol error page

    served.wechat.control.next_qr_refusal(WEB_APPID)
    visit.open("/login")
    visit.submit("a.button.wechat")  # WeChat's answer: refused
    served.wechat.control.next_qr_user(WEB_APPID, user=f"new-{locale}", nickname="卡罗尔")
    visit.open("/login")
    visit.submit("a.button.wechat")  # a WeChat user with no account yet: the choice page

    visit.auditor.assert_clean()


@pytest.mark.parametrize(("locale", "lang"), LANGUAGES)
def test_authorization_pages_pass_axe__wcag_2_1_aa(
    served: Served, driver: Any, locale: str, lang: str
) -> None:
    visit = Visit(driver, served, lang)
    _verifier, challenge = pkce_pair()
    query = urlencode({
        "response_type": "code", "client_id": served.client_id, "scope": "openid profile phone",
        "redirect_uri": served.redirect_uri, "state": "s", "nonce": "n",
        "code_challenge": challenge, "code_challenge_method": "S256",
        "ui_locales": lang,
    })
    visit.open(f"/oauth/authorize?{query}")  # the login page, in the RP's language
    visit.fill(identifier=PHONE_NUMBER, password=PASSWORD)
    visit.submit(PASSWORD_FORM)  # the consent page
    visit.open("/account")
    visit.open("/oauth/logout")  # "Sign out?"
    visit.submit("button[value=stay]")

    visit.auditor.assert_clean()
