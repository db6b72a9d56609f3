"""Four-eyes in two real browsers (issue 27 item 2): a support admin proposes a merge on a
desktop in English; an identity admin, on a 390 px phone in Chinese, sees the same preview and
approves it. Every page both visit passes axe (WCAG 2.1 AA)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from idp import create_app
from idp.extensions import db
from tests.accessibility.axe import Auditor
from tests.accessibility.chromium import PHONE, page_width, start_chromium
from tests.admin.test_browser import CHROMEDRIVER, CHROMIUM, WAIT_SECONDS  # skips without them
from tests.conftest import PASSWORD, base_config
from tests.page_waits import page_replaced

SUPPORT_PHONE, IDENTITY_PHONE = "+8613900000401", "+8613900000402"
OVERSIGHT_PHONE = "+8613900000403"  # security and auditor (relaxed separation)
SECRETS = {phone: pyotp.random_base32()
           for phone in (SUPPORT_PHONE, IDENTITY_PHONE, OVERSIGHT_PHONE)}
assert CHROMIUM and CHROMEDRIVER


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, str, str]]:
    tmp = tmp_path_factory.mktemp("four-eyes")
    app = create_app(base_config(tmp, f"sqlite:///{tmp / 'idp.sqlite3'}"))
    with app.app_context():
        db.create_all()
        older, newer = _seed(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}", older, newer
    finally:
        server.shutdown()
        thread.join(5)
        with app.app_context():
            db.engine.dispose()


def _seed(app: Any) -> tuple[str, str]:
    from idp.accounts.seed import create_password_user
    from idp.identity.audit import Actor
    from idp.staff.roles import grant_role

    box = app.extensions["idp_secret_box"]
    for phone, roles in ((SUPPORT_PHONE, ("support",)), (IDENTITY_PHONE, ("identity",)),
                         (OVERSIGHT_PHONE, ("security", "auditor"))):
        admin = create_password_user(phone, PASSWORD, name=f"{roles[0]} admin")
        for role in roles:
            grant_role(admin, role, Actor.system("test"))
        admin.totp_secret_encrypted = box.encrypt(SECRETS[phone],
                                                  context=f"admin-totp:{admin.id}")
    older = create_password_user("+8613800000401", PASSWORD, name="Wei Older")
    newer = create_password_user("+8613800000402", PASSWORD, name="Wei Newer")
    db.session.commit()
    return older.id, newer.id


def _go(driver: Any, auditor: Auditor, by: str, value: str) -> None:
    old_page = driver.find_element(By.TAG_NAME, "html")
    WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.element_to_be_clickable((by, value))
    ).click()
    WebDriverWait(driver, WAIT_SECONDS).until(page_replaced(old_page))
    auditor.audit(driver)


def _sign_in(driver: Any, auditor: Auditor, url: str, phone: str, next_path: str) -> None:
    driver.get(f"{url}/login?next={next_path}")
    driver.find_element(By.NAME, "identifier").send_keys(phone)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    _go(driver, auditor, By.CSS_SELECTOR, "form[action$='/login'] button[type=submit]")
    driver.find_element(By.NAME, "code").send_keys(pyotp.TOTP(SECRETS[phone]).now())
    _go(driver, auditor, By.CSS_SELECTOR, "form button.primary")


def test_a_merge_proposed_in_one_browser_is_approved_in_another(served: Any) -> None:
    app, url, older, newer = served
    auditor = Auditor()
    desktop = start_chromium(1280, 900)
    phone = start_chromium(*PHONE)
    try:
        _sign_in(desktop, auditor, url, SUPPORT_PHONE, f"/admin/merge?a={older}%26b={newer}")
        WebDriverWait(desktop, WAIT_SECONDS).until(
            expected_conditions.presence_of_element_located((By.ID, "merge-form")))
        seen_by_proposer = desktop.find_element(By.ID, "survivor-id").text
        desktop.find_element(By.NAME, "reason").send_keys("same person: two phones, one ID card")
        _go(desktop, auditor, By.CSS_SELECTOR, "#merge-form button.danger")
        assert "approve" not in [b.get_attribute("id") for b in
                                 desktop.find_elements(By.CSS_SELECTOR, "#proposal button")]
        proposal_url = desktop.current_url

        phone.get(url + "/locale/zh_CN?next=/healthz")
        _sign_in(phone, auditor, url, IDENTITY_PHONE, "/admin/proposals")
        assert phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
        _go(phone, auditor, By.CSS_SELECTOR, "#proposals a")
        assert phone.current_url == proposal_url
        assert phone.find_element(By.ID, "survivor-id").text == seen_by_proposer == older
        assert "two phones" in phone.find_element(By.ID, "proposal-reason").text
        assert page_width(phone) == PHONE[0]
        _go(phone, auditor, By.ID, "approve")
        assert phone.find_element(By.ID, "proposal-status").text == "已批准"
    finally:
        desktop.quit()
        phone.quit()
    with app.app_context():
        from idp.identity.models import Account

        assert db.session.get(Account, newer).merged_into_id == older
    auditor.assert_clean()


def test_the_admins_and_audit_pages_on_a_phone_in_chinese(served: Any) -> None:
    _app, url, older, _newer = served
    auditor = Auditor()
    phone = start_chromium(*PHONE)
    try:
        phone.get(url + "/locale/zh_CN?next=/healthz")
        _sign_in(phone, auditor, url, OVERSIGHT_PHONE, "/admin/admins")
        assert phone.find_element(By.ID, "grant-form")
        assert page_width(phone) == PHONE[0]
        phone.get(f"{url}/admin/audit?action=account.merge")
        auditor.audit(phone)
        rows = phone.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
        assert rows and all("account.merge" in row.text for row in rows)
        assert page_width(phone) == PHONE[0]
    finally:
        phone.quit()
    auditor.assert_clean()
