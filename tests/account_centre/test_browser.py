"""The account centre end to end in headless Chromium (Debian's, through chromedriver) against
the IdP served on loopback, with the fake WeChat on loopback and a virtual WebAuthn authenticator
(the DevTools WebAuthn domain). Served as http://localhost:<port>: browsers refuse an IP address
as a WebAuthn RP ID. Screenshots (390 px wide, the phone size) go to tests/_screenshots/.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from idp import create_app
from idp.extensions import db
from tests.conftest import PASSWORD, CodeFlow, IsolatedClient, base_config, login
from tests.page_waits import page_replaced

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "_screenshots"
WAIT_SECONDS = 10
WEB_APPID = "wxb0000000000centre"
WEB_SECRET = "web-secret-centre-0000000000000001"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
                allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.virtual_authenticator import (  # noqa: E402
    Protocol,
    Transport,
    VirtualAuthenticatorOptions,
)
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@dataclass
class Served:
    app: Flask
    url: str
    wechat: Any
    counter: Any

    def new_phone(self) -> str:
        return f"+86137{next(self.counter):08d}"

    def user(self, **kwargs: Any) -> Any:
        from idp.accounts.seed import create_password_user

        with self.app.app_context():
            account = create_password_user(self.new_phone(), PASSWORD, **kwargs)
            phone = next(i.value for i in account.identities if i.kind == "phone")
            return account.id, phone

    def sms(self, phone: str) -> str:
        code = self.app.extensions["idp_sms"].last_code(phone)
        assert code
        return code


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, fake_wechat_server: Any) -> Iterator[Served]:
    from idp.wechat.apps import create_wechat_app

    tmp = tmp_path_factory.mktemp("centre-browser")
    wechat = fake_wechat_server
    wechat.control.reset()
    wechat.control.register_app(WEB_APPID, WEB_SECRET, kind="website")
    config = base_config(tmp, f"sqlite:///{tmp / 'idp.sqlite3'}")
    config["IDP_ISSUER"] = "http://localhost:5000"
    config["IDP_WECHAT_API_BASE"] = wechat.base_url
    config["IDP_WECHAT_OPEN_BASE"] = wechat.base_url
    app = create_app(config)
    app.test_client_class = IsolatedClient  # the other browsers and relying parties
    with app.app_context():
        db.create_all()
        create_wechat_app("website", WEB_APPID, WEB_SECRET, name="Our website")
    server: BaseWSGIServer = make_server("localhost", 0, app, threaded=True)
    url = f"http://localhost:{server.server_port}"
    app.config["IDP_ISSUER"] = url  # the port is known only now; read per request
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(app, url, wechat, iter(range(10_000_000, 99_999_999)))
    finally:
        server.shutdown()
        thread.join(5)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    yield from phone_browser()


def phone_browser(user_agent: str | None = None) -> Iterator[Any]:
    """Headless Chromium at a phone's size (390 px), optionally with another User-Agent."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=390,844", "--lang=en-US"):
        options.add_argument(argument)
    if user_agent:
        options.add_argument(f"--user-agent={user_agent}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    chrome.implicitly_wait(2)
    # A phone's viewport (a window cannot be made narrower than 500 px in headless Chromium).
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def browser(driver: Any, served: Served) -> Any:
    driver.get(served.url + "/healthz")
    driver.delete_all_cookies()
    return driver


def _shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(SCREENSHOTS / f"account-centre-{name}.png"))
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"{name}: {width}px wide at a 390px screen"


def _wait_for(driver: Any, css: str) -> Any:
    return WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def _go(driver: Any, by: str, value: str) -> None:
    old = driver.find_element(By.TAG_NAME, "html")
    WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.element_to_be_clickable((by, value))).click()
    WebDriverWait(driver, WAIT_SECONDS).until(page_replaced(old))


def _fill(driver: Any, name: str, value: str) -> None:
    field = driver.find_element(By.NAME, name)
    field.clear()
    field.send_keys(value)


def _sign_in(driver: Any, served: Served, phone: str, next_path: str = "/account/security",
             password: str = PASSWORD) -> None:
    driver.get(f"{served.url}/login?next={next_path}")
    _fill(driver, "identifier", phone)
    _fill(driver, "password", password)
    # The login page has two forms (SMS code first): press the password form's button.
    _go(driver, By.CSS_SELECTOR, "form[action$='/login'] button[type=submit]")


def _flash(driver: Any) -> str:
    return _wait_for(driver, "p.flash").text


def _no_console_errors(driver: Any) -> None:
    errors = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]]
    assert errors == []


def test_bind_wechat_then_unbind(browser: Any, served: Served) -> None:
    _account, phone = served.user()
    _sign_in(browser, served, phone)
    served.wechat.control.next_qr_user(WEB_APPID, user="browser-wx", unionid="u-browser-wx")
    _go(browser, By.ID, "bind-wechat")
    assert "WeChat added" in _flash(browser)
    ways = browser.find_element(By.ID, "ways").text
    assert "Our website" in ways
    _shot(browser, "01-wechat-bound")
    _go(browser, By.CSS_SELECTOR, "li.way[data-kind=wechat_openid] button")
    assert "no longer signs you in" in _flash(browser)
    assert "Our website" not in browser.find_element(By.ID, "ways").text
    _go(browser, By.CSS_SELECTOR, "li.way[data-kind=wechat_unionid] button")
    assert "WeChat" not in browser.find_element(By.ID, "ways").text
    # The last way in cannot go: its button is disabled and says why.
    assert "cannot be removed" in browser.find_element(By.ID, "ways").text
    _no_console_errors(browser)


def test_change_phone(browser: Any, served: Served) -> None:
    _account, phone = served.user()
    _sign_in(browser, served, phone)
    _go(browser, By.ID, "change-phone")
    new_phone = served.new_phone()
    _fill(browser, "phone", new_phone)
    _go(browser, By.CSS_SELECTOR, "form button.primary")
    _fill(browser, "code", served.sms(new_phone))
    _shot(browser, "02-phone-code")
    _go(browser, By.CSS_SELECTOR, "form button.primary")
    assert "Your phone number is now" in _flash(browser)
    assert new_phone[-4:] in browser.find_element(By.ID, "ways").text


def test_end_another_session(browser: Any, served: Served) -> None:
    _account, phone = served.user()
    other = served.app.test_client()
    other.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Safari/537.36")
    with served.app.app_context():
        assert login(other, phone).status_code == 302
    _sign_in(browser, served, phone, "/account/sessions")
    sessions = browser.find_element(By.ID, "sessions").text
    assert "Windows" in sessions and "this browser" in sessions
    _shot(browser, "03-sessions")
    _go(browser, By.CSS_SELECTOR, "button.end-session")
    assert "That session has ended" in _flash(browser)
    assert "Windows" not in browser.find_element(By.ID, "sessions").text
    with served.app.app_context():
        assert other.get("/account/sessions").status_code == 302


def test_revoke_an_app(browser: Any, served: Served) -> None:
    from idp.oidc.clients import create_client

    _account, phone = served.user()
    with served.app.app_context():
        rp, secret = create_client(name="Browser shop",
                                   redirect_uris=["https://shop.example/callback"])
        rp_browser = served.app.test_client()
        login(rp_browser, phone)
        flow = CodeFlow(rp_browser, rp, secret, "https://shop.example/callback")
        tokens = flow.tokens(scope="openid profile offline_access")
        client_id = rp.client_id
    _sign_in(browser, served, phone, "/account/apps")
    assert "Browser shop" in browser.find_element(By.ID, "apps").text
    _shot(browser, "04-apps")
    _go(browser, By.CSS_SELECTOR, "button.revoke")
    assert "Access removed" in _flash(browser)
    _wait_for(browser, "#no-apps")
    with served.app.app_context():
        refreshed = rp_browser.post("/oauth/token", auth=(client_id, secret), data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 400


def test_enrol_totp_and_sign_in_with_it(browser: Any, served: Served) -> None:
    _account, phone = served.user()
    _sign_in(browser, served, phone, "/account/two-factor")
    _go(browser, By.ID, "add-totp")
    _wait_for(browser, "svg.qr")
    browser.find_element(By.CSS_SELECTOR, "details summary").click()
    secret = browser.find_element(By.ID, "totp-secret").text.strip()
    _fill(browser, "code", pyotp.TOTP(secret).now())
    _shot(browser, "05-totp-enrol")
    _go(browser, By.CSS_SELECTOR, "form button.primary")
    codes = browser.find_element(By.ID, "recovery-codes").text.split()
    assert len(codes) == 10
    _shot(browser, "06-recovery-codes")
    browser.delete_all_cookies()
    _sign_in(browser, served, phone, "/account/sessions")
    assert "/account/second-factor" in browser.current_url
    _fill(browser, "totp-code", pyotp.TOTP(secret).at(time.time() + 30))
    _shot(browser, "07-second-step")
    _go(browser, By.CSS_SELECTOR, "#totp-step button")
    assert "second factor" in browser.find_element(By.ID, "sessions").text


def test_enrol_passkey_and_sign_in_with_it(browser: Any, served: Served) -> None:
    authenticator = browser.add_virtual_authenticator(VirtualAuthenticatorOptions(
        protocol=Protocol.CTAP2, transport=Transport.INTERNAL, has_resident_key=True,
        has_user_verification=True, is_user_verified=True))
    try:
        _account, phone = served.user()
        _sign_in(browser, served, phone, "/account/two-factor")
        browser.find_element(By.ID, "add-passkey").click()
        _wait_for(browser, "#passkey-recovery:not([hidden])")
        assert len(browser.find_element(By.ID, "passkey-recovery-codes").text.split()) == 10
        _go(browser, By.ID, "passkey-done")
        assert "Passkey" in browser.find_element(By.ID, "factors").text
        _shot(browser, "08-passkey-enrolled")
        browser.delete_all_cookies()
        _sign_in(browser, served, phone, "/account/sessions")
        assert "/account/second-factor" in browser.current_url
        _go(browser, By.ID, "use-passkey")
        assert "second factor" in _wait_for(browser, "#sessions").text
        _no_console_errors(browser)
    finally:
        browser.remove_virtual_authenticator()
    assert authenticator is None or authenticator


def test_delete_then_cancel_within_grace_period(browser: Any, served: Served) -> None:
    account_id, phone = served.user()
    _sign_in(browser, served, phone, "/account/delete")
    _shot(browser, "09-delete")
    _fill(browser, "confirm", "DELETE")
    _go(browser, By.CSS_SELECTOR, "#delete-form button")
    assert "will be deleted on" in _flash(browser)
    _sign_in(browser, served, phone)
    assert "/account/deletion" in browser.current_url
    _shot(browser, "10-deletion-pending")
    _go(browser, By.ID, "cancel-deletion")
    assert "Deletion cancelled" in _flash(browser)
    from idp.identity.models import Account

    with served.app.app_context():
        assert db.session.get(Account, account_id).deletion_due_at is None


def test_delete_and_let_the_worker_erase(browser: Any, served: Served) -> None:
    from idp.identity.models import Account, AccountStatus, Identity
    from idp.maintenance.schedule import run_due_jobs
    from idp.models_base import utcnow

    account_id, phone = served.user(name="Erin Erased")
    _sign_in(browser, served, phone, "/account/delete")
    _fill(browser, "confirm", "注销")
    _go(browser, By.CSS_SELECTOR, "#delete-form button")
    with served.app.app_context():
        account = db.session.get(Account, account_id)
        account.deletion_due_at = utcnow() - timedelta(seconds=1)  # the grace period is over
        db.session.commit()
    run_due_jobs(served.app)  # the scheduled jobs of `idp worker`
    with served.app.app_context():
        assert db.session.get(Account, account_id).status == AccountStatus.DELETED
        assert db.session.scalars(
            select(Identity).where(Identity.account_id == account_id)).all() == []
    _sign_in(browser, served, phone)
    assert "not right" in _flash(browser)
    assert re.search(r"/login", browser.current_url)


def test_edit_gender_birthdate_and_address_on_the_profile_page(
    browser: Any, served: Served
) -> None:
    """Issue 16: the profile form's inputs follow the data dictionary's types (a select for
    gender, a date input for the birthdate, the address in its parts), at 390 px."""
    from idp.identity.claims import profile_values
    from idp.identity.models import Account

    account_id, phone = served.user(name="Fay")
    _sign_in(browser, served, phone, "/account")
    Select(browser.find_element(By.NAME, "gender")).select_by_value("female")
    birthdate = browser.find_element(By.NAME, "birthdate")
    assert birthdate.get_attribute("type") == "date"
    # A date input's typing order follows the browser's locale: set the value as a picker does.
    browser.execute_script("arguments[0].value = '1990-05-01'", birthdate)
    _fill(browser, "address-locality", "上海")
    _fill(browser, "address-country", "CN")
    _shot(browser, "09-profile-form")
    _go(browser, By.CSS_SELECTOR, "#profile-form button[type=submit]")
    assert "Your profile has been saved" in _flash(browser)
    assert Select(browser.find_element(By.NAME, "gender")).first_selected_option.get_attribute(
        "value") == "female"
    assert browser.find_element(By.NAME, "birthdate").get_attribute("value") == "1990-05-01"
    with served.app.app_context():
        served_values = profile_values(db.session.get(Account, account_id))
        assert served_values["gender"] == ("female", "user")
        assert served_values["birthdate"] == ("1990-05-01", "user")
        assert served_values["address"][0] == '{"locality": "上海", "country": "CN"}'
    _no_console_errors(browser)
