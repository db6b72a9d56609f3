"""End to end in real headless Chromium (Debian's, driven by Selenium through chromedriver)
against the IdP served on loopback: admin login with TOTP, search, merge with preview, undo,
client creation, and the phone-sized and Chinese layouts. Screenshots go to tests/_screenshots/.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from idp import create_app
from idp.extensions import db
from tests.accessibility.axe import Auditor
from tests.accessibility.chromium import PHONE, page_width, screen_width, start_chromium
from tests.conftest import PASSWORD, base_config
from tests.page_waits import page_replaced

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "_screenshots"
ADMIN_PHONE = "+8613900000009"
WAIT_SECONDS = 10
# axe-core runs on every page the tests below reach (tests/accessibility/axe.py); the last test
# reports what it found and visits the same pages again in Chinese on a phone-sized screen.
AUDITOR = Auditor()

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed "
        "(`apt-get install chromium chromium-driver`; .ci/run does it)",
        allow_module_level=True,
    )

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@dataclass
class Served:
    app: Flask
    url: str
    alice: str
    mini: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("browser")
    # One admin: merges and undos are carried out at once (test_four_eyes_browser.py has two).
    app = create_app({**base_config(tmp, f"sqlite:///{tmp / 'idp.sqlite3'}"),
                      "IDP_ADMIN_FOUR_EYES": ""})
    with app.app_context():
        db.create_all()
        alice, mini = _seed()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(app, f"http://127.0.0.1:{server.server_port}", alice, mini)
    finally:
        server.shutdown()
        thread.join(5)
        with app.app_context():
            db.engine.dispose()


def _seed() -> tuple[str, str]:
    from idp.accounts.seed import create_password_user
    from idp.identity.accounts import create_account, link_identity, set_claim
    from idp.identity.audit import Actor
    from idp.identity.models import IdentityKind
    from idp.staff.roles import grant_role

    admin = create_password_user(ADMIN_PHONE, PASSWORD, name="Ada Admin", admin=True)
    for role in ("support", "identity", "auditor"):  # one operator, relaxed separation
        grant_role(admin, role, Actor.system("test"))
    alice = create_password_user("+8613800138000", PASSWORD, name="Alice Liddell")
    actor = Actor.system("test")
    mini = create_account(actor, "miniprogram")
    link_identity(mini, IdentityKind.WECHAT_OPENID, "o-alice-mini", actor,
                  namespace="wxminibrowser0001", verified=True, proof="wechat_login")
    set_claim(mini, "nickname", "阿丽", "wechat")
    db.session.commit()
    return alice.id, mini.id


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(2)
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(SCREENSHOTS / f"admin-{name}.png"))


def _wait_for(driver: Any, css: str) -> Any:
    return WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def _go(driver: Any, by: str, value: str) -> None:
    """Click something that loads a new page, and wait until the old page is gone: finding the
    next element too early could find it on the old page (a stale element, a flaky test)."""
    old_page = driver.find_element(By.TAG_NAME, "html")
    WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.element_to_be_clickable((by, value))
    ).click()
    WebDriverWait(driver, WAIT_SECONDS).until(page_replaced(old_page))
    AUDITOR.audit(driver)


def _fill(driver: Any, name: str, value: str) -> None:
    field = driver.find_element(By.NAME, name)
    field.clear()
    field.send_keys(value)


def _no_console_errors(driver: Any) -> None:
    """A CSP violation (inline script or style) shows up as a SEVERE console message."""
    errors = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]]
    assert errors == []


def test_admin_fixes_links_end_to_end(served: Served, browser: Any) -> None:
    driver = browser
    # Log in through the IdP's own login, then enrol TOTP from the page.
    driver.get(served.url + "/admin/")
    assert "/login" in driver.current_url
    AUDITOR.audit(driver)
    _fill(driver, "identifier", ADMIN_PHONE)
    _fill(driver, "password", PASSWORD)
    # The password form (the login page offers phone + SMS code first).
    _go(driver, By.CSS_SELECTOR, "form[action$='/login'] button[type=submit]")
    _wait_for(driver, "svg.qr")
    _shot(driver, "01-totp-enrol")
    driver.find_element(By.CSS_SELECTOR, "details summary").click()
    shown = driver.find_element(By.ID, "totp-secret").text.strip()
    assert all(len(group) == 4 for group in shown.split()[:-1])  # typed by hand: in fours
    secret = shown.replace(" ", "")
    _fill(driver, "code", pyotp.TOTP(secret).now())
    _go(driver, By.CSS_SELECTOR, "form button.primary")
    _wait_for(driver, "#chart-logins svg.chart")
    _shot(driver, "02-dashboard")
    _no_console_errors(driver)

    # Search by a phone typed the way people type it.
    _go(driver, By.LINK_TEXT, "Accounts")
    _fill(driver, "q", "138 0013 8000")
    _go(driver, By.CSS_SELECTOR, "form.search button")
    _go(driver, By.LINK_TEXT, served.alice)
    _wait_for(driver, "#identities")
    assert "Alice Liddell" in driver.page_source
    _shot(driver, "03-account")
    # At 1280 px the identities table fits its card, and no id or audit action breaks mid-word.
    table, frame = driver.execute_script(
        "const t = document.getElementById('identities');"
        "return [t.scrollWidth, t.parentElement.clientWidth];"
    )
    assert table <= frame
    assert driver.execute_script(
        "return [...document.querySelectorAll('td code')].every("
        "c => getComputedStyle(c).whiteSpace === 'nowrap')"
    )

    # Merge with preview: find the mini-program account by its openid.
    _go(driver, By.PARTIAL_LINK_TEXT, "Merge with another account")
    _fill(driver, "q", "o-alice-mini")
    _go(driver, By.CSS_SELECTOR, "form.search button")
    _go(driver, By.LINK_TEXT, served.mini)
    _wait_for(driver, "#merge-form")
    assert driver.find_element(By.ID, "survivor-id").text == served.alice  # the older one
    assert "o-alice-mini" in driver.find_element(By.ID, "moving-identities").text
    _shot(driver, "04-merge-preview")
    _fill(driver, "reason", "same person: confirmed on the phone")
    _go(driver, By.CSS_SELECTOR, "#merge-form button.danger")
    _wait_for(driver, "p.flash.info")
    assert "is now an alias of" in driver.page_source
    assert "o-alice-mini" in driver.find_element(By.ID, "identities").text
    _shot(driver, "05-merged")

    # Undo from the merge history, through its confirmation page.
    _go(driver, By.LINK_TEXT, "Merge history")
    _go(driver, By.PARTIAL_LINK_TEXT, "Undo")
    assert "comes back with its own sub" in driver.page_source
    _shot(driver, "06-undo-confirm")
    _go(driver, By.CSS_SELECTOR, "button[data-confirm]")
    _wait_for(driver, "p.flash.info")
    assert served.mini in driver.current_url
    assert "o-alice-mini" in driver.find_element(By.ID, "identities").text

    # Create a client; its secret is shown once.
    _go(driver, By.LINK_TEXT, "Clients")
    _go(driver, By.ID, "new-client")
    _fill(driver, "name", "Browser shop")
    _fill(driver, "redirect_uris", "https://shop.example/callback")
    _go(driver, By.CSS_SELECTOR, "#client-form button.primary")
    secret_text = _wait_for(driver, "#client-secret").text
    assert len(secret_text) > 30
    _shot(driver, "07-client-created")
    _no_console_errors(driver)


def test_phone_sized_screen_and_chinese(served: Served, browser: Any) -> None:
    driver = browser  # still signed in, second factor passed, from the test above
    driver.set_window_size(390, 844)
    try:
        driver.get(served.url + "/admin/")
        _wait_for(driver, "#chart-logins")
        menu = driver.find_element(By.CSS_SELECTOR, "details.menu")
        assert menu.get_attribute("open") is None  # folded on a phone
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390  # nothing sticks out sideways
        _go(driver, By.LINK_TEXT, "中文")
        _wait_for(driver, "#chart-logins")
        assert "仪表盘" in driver.page_source
        _shot(driver, "08-phone-zh")
        driver.find_element(By.CSS_SELECTOR, "details.menu summary").click()
        _go(driver, By.LINK_TEXT, "账号")
        _wait_for(driver, "form.search")
        _shot(driver, "09-phone-zh-accounts")
    finally:
        driver.set_window_size(1280, 900)
        driver.get(served.url + "/locale/en?next=/admin/")


def test_every_admin_page_visited_passes_axe_in_both_languages__wcag_2_1_aa(
    served: Served, browser: Any
) -> None:
    """The pages above, in English at 1280 px; then each again in Chinese on a 390 px phone, in
    a second browser holding the same admin session."""
    assert AUDITOR.pages, "the tests above visited no page"
    AUDITOR.assert_clean()
    phone = start_chromium(*PHONE)
    chinese = Auditor()
    try:
        phone.get(served.url + "/healthz")
        for cookie in browser.get_cookies():
            phone.add_cookie({"name": cookie["name"], "value": cookie["value"], "path": "/"})
        phone.get(served.url + "/locale/zh_CN?next=/healthz")
        # Only this module's server: other modules use these helpers too, and their servers
        # are gone by now.
        for url in [url for url in AUDITOR.pages if url.startswith(served.url + "/")]:
            phone.get(url)
            assert phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
            wide = phone.execute_script(
                "return [...document.querySelectorAll('body *')].filter(e => "
                "e.getBoundingClientRect().right > document.documentElement.clientWidth + 1"
                " && (!e.parentElement.closest('.scroll'))"
                ").slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ':' + "
                "Math.round(e.getBoundingClientRect().left) + '-' + "
                "Math.round(e.getBoundingClientRect().right))"
            )
            assert (screen_width(phone), page_width(phone)) == (PHONE[0], PHONE[0]), (url, wide)
            chinese.audit(phone)
            label_heights = phone.execute_script(
                "return [...document.querySelectorAll('svg.chart text')]"
                ".map(t => t.getBoundingClientRect().height)"
            )
            assert all(height >= 10 for height in label_heights), (url, label_heights)
    finally:
        phone.quit()
    chinese.assert_clean()


def test_screenshots_folder_is_ignored_by_git() -> None:
    ignore = (Path(__file__).resolve().parents[2] / ".gitignore").read_text()
    assert "tests/_screenshots/" in ignore


def test_dashboard_shows_reconciliation_and_delivery_charts(served: Served, browser: Any) -> None:
    """The data-unification loop on the dashboard (issue 16): the latest reconciliation run and
    its trend, a finding linked to its account, and event delivery per day for a sink."""
    from datetime import timedelta

    from idp.events.models import EventDelivery
    from idp.identity.accounts import create_account, link_identity
    from idp.identity.audit import Actor
    from idp.identity.models import IdentityKind
    from idp.maintenance.reconciliation import run_reconciliation
    from idp.models_base import utcnow
    from idp.usage.rollups import refresh_daily

    with served.app.app_context():
        actor = Actor.system("test")
        joined = create_account(actor, "miniprogram")
        link_identity(joined, IdentityKind.WECHAT_UNIONID, "u-browser", actor, verified=True,
                      proof="wechat_login")
        run_reconciliation(trigger="cli")
        lone = create_account(actor, "miniprogram")
        link_identity(lone, IdentityKind.WECHAT_OPENID, "o-browser-lone", actor,
                      namespace="wxminibrowser0001", verified=True, proof="wechat_login")
        for days_ago, status, attempts in ((3, "delivered", 1), (3, "delivered", 4),
                                           (2, "dead", 8), (1, "delivered", 1)):
            db.session.add(EventDelivery(
                client_id="shop-events", event_type="account-merged", payload="{}",
                status=status, attempts=attempts,
                created_at=utcnow() - timedelta(days=days_ago)))
        db.session.commit()
        run_reconciliation(trigger="worker")
        refresh_daily()
        lone_id = lone.id

    driver = browser  # signed in by the tests above
    driver.get(served.url + "/admin/")
    card = _wait_for(driver, "#chart-reconciliation svg.chart")
    assert card.find_elements(By.CSS_SELECTOR, "rect")  # the trend has bars
    assert driver.find_element(By.CSS_SELECTOR, f'a[href="/admin/accounts/{lone_id}"]')
    delivery = _wait_for(driver, ".chart-delivery svg.chart")
    assert len(delivery.find_elements(By.CSS_SELECTOR, "rect")) >= 3  # first try, retried, dead
    assert "Event delivery per day: shop-events" in driver.page_source
    driver.execute_script("document.getElementById('data-loop').scrollIntoView()")
    _shot(driver, "10-dashboard-data-loop")
    _no_console_errors(driver)
    _go(driver, By.LINK_TEXT, "Data dictionary")
    _wait_for(driver, "#claims")
    assert "address" in driver.find_element(By.ID, "claims").text
    _shot(driver, "11-data-dictionary")
