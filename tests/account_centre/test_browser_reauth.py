# ruff: noqa: F811 - the fixtures come from tests/account_centre/test_browser.py
"""Re-authentication before adding a way in, clicked through in headless Chromium: a session
older than IDP_REAUTH_SECONDS presses "Add WeChat" or "Add a passkey", is asked to confirm it is
you, comes back to what it was doing and finishes it; after the passkey, the two-step page
offers to sign out everywhere else (issue 23, items 1, 5 and 6)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from idp.extensions import db

# Through test_browser: it skips the module when selenium or Chromium is missing.
from tests.account_centre.test_browser import (  # noqa: F401 - fixtures
    WEB_APPID,
    By,
    Served,
    _fill,
    _flash,
    _go,
    _no_console_errors,
    _shot,
    _sign_in,
    _wait_for,
    browser,
    driver,
    served,
)
from tests.conftest import PASSWORD, login


def _age_sessions(served: Served, account_id: str) -> None:
    from idp.identity.models import LoginSession

    window = int(served.app.config["IDP_REAUTH_SECONDS"])
    with served.app.app_context():
        for row in db.session.scalars(
                select(LoginSession).where(LoginSession.account_id == account_id)):
            row.auth_time = row.auth_time - timedelta(seconds=window + 60)
        db.session.commit()


def _confirm_with_password(browser: Any) -> None:
    assert "/account/reauth" in browser.current_url
    _fill(browser, "pw-password", PASSWORD)
    _go(browser, By.CSS_SELECTOR, "#reauth-password button")


def test_a_stale_session_adds_wechat_after_confirming_it_is_you(
    browser: Any, served: Served
) -> None:
    account_id, phone = served.user()
    _sign_in(browser, served, phone)
    _age_sessions(served, account_id)
    served.wechat.control.next_qr_user(WEB_APPID, user="stale-wx", unionid="u-stale-wx")
    _go(browser, By.ID, "bind-wechat")  # a POST: the stale session is sent to confirm
    _shot(browser, "reauth-01-confirm-before-wechat")
    _confirm_with_password(browser)
    assert browser.current_url.endswith("/account/ways/wechat")  # the page with the button
    _shot(browser, "reauth-02-add-wechat-page")
    _go(browser, By.ID, "bind-wechat")
    assert "WeChat added" in _flash(browser)
    assert "Our website" in browser.find_element(By.ID, "ways").text
    _no_console_errors(browser)


def test_a_stale_session_adds_a_passkey_after_confirming_then_signs_out_elsewhere(
    browser: Any, served: Served
) -> None:
    from selenium.webdriver.common.virtual_authenticator import (
        Protocol,
        Transport,
        VirtualAuthenticatorOptions,
    )

    browser.add_virtual_authenticator(VirtualAuthenticatorOptions(
        protocol=Protocol.CTAP2, transport=Transport.INTERNAL, has_resident_key=True,
        has_user_verification=True, is_user_verified=True))
    try:
        account_id, phone = served.user()
        other = served.app.test_client()
        with served.app.app_context():
            assert login(other, phone).status_code == 302
        _sign_in(browser, served, phone, "/account/two-factor")
        _age_sessions(served, account_id)  # the page was loaded fresh; the click comes late
        browser.find_element(By.ID, "add-passkey").click()
        _wait_for(browser, "#reauth-password")  # the script followed the 403's `reauth`
        _confirm_with_password(browser)
        assert browser.current_url.endswith("/account/two-factor")
        browser.find_element(By.ID, "add-passkey").click()
        _wait_for(browser, "#passkey-recovery:not([hidden])")
        _go(browser, By.ID, "passkey-done")
        offer = browser.find_element(By.ID, "sign-out-elsewhere").text
        assert "still signed in elsewhere" in offer
        _shot(browser, "reauth-03-sign-out-elsewhere")
        _go(browser, By.ID, "sign-out-elsewhere-button")
        assert "Signed out everywhere else" in _flash(browser)
        with served.app.app_context():
            assert other.get("/account/sessions").status_code == 302
        # The browser logs the refused call itself (the 403 the script followed); nothing else.
        errors = [entry["message"] for entry in browser.get_log("browser")
                  if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]]
        assert all("/account/two-factor/passkey/options" in e and "403" in e for e in errors)
    finally:
        browser.remove_virtual_authenticator()
