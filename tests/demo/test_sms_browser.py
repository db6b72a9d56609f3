"""In real headless Chromium: a phone verified in the mini-program (getPhoneNumber through the
fake WeChat) signs in on the website by SMS code, to the same `sub` (issue 11). The demo stack
(IdP, demo website, fake WeChat) is served on loopback; the code is read from the development
sender's outbox, as a phone would show it."""

from __future__ import annotations

import json
import re
from typing import Any

from selenium.webdriver.common.by import By

from tests.admin.test_browser import _fill, _go, _no_console_errors, _wait_for, browser
from tests.demo.conftest import DemoStack
from tests.demo.test_simulated_miniprogram import require_token_exchange

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with the admin tests

PHONE_TYPED = "13700137000"
PHONE = "+8613700137000"


def miniprogram_sub(driver: Any, stack: DemoStack) -> str:
    driver.get(f"{stack.rp_url}/miniprogram")
    _fill(driver, "user", "mini-user-with-phone")
    _go(driver, By.XPATH, "//button[contains(., 'wx.login')]")
    assert _wait_for(driver, "#last-status").text == "200"
    _fill(driver, "phone", PHONE_TYPED)
    _go(driver, By.XPATH, "//button[contains(., 'getPhoneNumber')]")
    assert _wait_for(driver, "#last-status").text == "200"
    body = json.loads(driver.find_element(By.ID, "last-body").text)
    assert body["phone_number"] == PHONE
    return str(body["sub"])


def test_a_phone_verified_in_the_miniprogram_signs_in_on_the_website_by_sms_code(
    demo_stack: DemoStack, browser: Any
) -> None:
    require_token_exchange(demo_stack)
    driver = browser
    driver.delete_all_cookies()
    sub = miniprogram_sub(driver, demo_stack)

    driver.get(demo_stack.rp_url)
    _go(driver, By.LINK_TEXT, "Log in with the IdP")
    _wait_for(driver, "#sms-form")
    _no_console_errors(driver)
    _fill(driver, "phone", PHONE_TYPED)
    _go(driver, By.CSS_SELECTOR, "#sms-form button[type=submit]")

    code = demo_stack.idp.extensions["idp_sms"].last_code(PHONE)
    assert code and re.fullmatch(r"\d{6}", code)
    _wait_for(driver, "#resend")
    _fill(driver, "code", code)
    driver.find_element(By.NAME, "accept_terms").click()
    _go(driver, By.XPATH, "//form[contains(@action, '/login/sms')]//button[@type='submit']")
    if driver.find_elements(By.NAME, "decision"):
        _go(driver, By.CSS_SELECTOR, "button[name=decision][value=allow]")

    assert _wait_for(driver, "#sub").text == sub
    claims = json.loads(driver.find_element(By.ID, "id-claims").text)
    assert claims["sub"] == sub and claims.get("amr") == ["sms"]
    _no_console_errors(driver)


def test_the_captcha_step_in_a_real_browser(
    demo_stack: DemoStack, browser: Any, fake_sms: Any
) -> None:
    """IDP_CAPTCHA_MODE=always with Tencent Captcha (the fake's TJCaptcha.js and
    DescribeCaptchaResult): the page loads the captcha's script under its CSP, the challenge
    fills the ticket, the server checks it, and only then is the code sent."""
    from idp.sms.captcha import build_captcha
    from idp.sms.settings import CaptchaSettings
    from tests.sms.conftest import captcha_config

    app = demo_stack.idp
    app.config.update(captcha_config(fake_sms.base_url), IDP_CAPTCHA_MODE="always",
                      IDP_CAPTCHA_JS_URL=f"{fake_sms.base_url}/TJCaptcha.js")
    app.extensions["idp_captcha"] = build_captcha(CaptchaSettings.from_config(app.config))
    driver = browser
    driver.delete_all_cookies()
    driver.get(f"{demo_stack.idp_url}/login")
    _fill(driver, "phone", "13600136000")
    _go(driver, By.CSS_SELECTOR, "#sms-form button[type=submit]")
    _wait_for(driver, "#captcha-start")
    assert app.extensions["idp_sms"].last_code("+8613600136000") is None
    _go(driver, By.ID, "captcha-start")  # the fake challenge passes and submits the form
    _wait_for(driver, "#resend")
    assert app.extensions["idp_sms"].last_code("+8613600136000")
    _no_console_errors(driver)
