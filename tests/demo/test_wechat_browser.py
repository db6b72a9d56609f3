"""The demo stack in real headless Chromium: scan-to-sign-in (the IdP's login page shows the
mini-program code → the simulated mini-program scans and confirms → the demo website receives an
ID token with amr wechat_scan) and sign-in inside WeChat's browser (a WeChat User-Agent: the
Official Account's snsapi_base, then snsapi_userinfo with WeChat's consent page)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.demo.conftest import Browser, DemoStack

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "_screenshots"
WAIT_SECONDS = 20
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0"
    " Safari/537.36"
)
WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.47.2560(0x28002F35) NetType/WIFI"
)

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


def chromium(user_agent: str) -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1000,1200", "--lang=en-US",
                     f"--user-agent={user_agent}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(2)
    SCREENSHOTS.mkdir(exist_ok=True)
    return driver


@pytest.fixture
def desktop() -> Iterator[Any]:
    driver = chromium(DESKTOP_UA)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def in_wechat() -> Iterator[Any]:
    driver = chromium(WECHAT_UA)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Any) -> Any:
    return WebDriverWait(driver, WAIT_SECONDS).until(condition)


def shot(driver: Any, name: str) -> None:
    driver.execute_script(  # the scan card, when the page has one, is what the shot is about
        "const card = document.getElementById('wechat-scan'); if (card) card.scrollIntoView();")
    driver.save_screenshot(str(SCREENSHOTS / f"wechat-{name}.png"))


def no_console_errors(driver: Any) -> None:
    """A CSP violation (inline script or style) shows up as a SEVERE console message."""
    errors = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]]
    assert errors == []


def id_token_claims(driver: Any) -> dict[str, Any]:
    claims = wait_for(driver, expected_conditions.presence_of_element_located(
        (By.ID, "id-claims")))
    return dict(json.loads(claims.text))


def test_scan_with_the_mini_program_signs_the_computer_in(
    demo_stack: DemoStack, desktop: Any, browser: Browser
) -> None:
    driver = desktop
    driver.get(demo_stack.rp_url + "/")
    driver.find_element(By.LINK_TEXT, "Log in with the IdP").click()
    wait_for(driver, expected_conditions.url_contains("/login"))
    # The code is shown: a real PNG from getwxacodeunlimit (the fake draws it), fully loaded.
    wait_for(driver, lambda d: d.execute_script(
        "const i = document.getElementById('wechat-scan-code');"
        " return i && i.complete && i.naturalWidth > 0;"))
    shot(driver, "scan-01-code")
    status = driver.find_element(By.ID, "wechat-scan-status")
    assert "Scan with WeChat" in status.text

    # The simulated mini-program: wx.login, getPhoneNumber, then scan the code and confirm.
    scanned = scan_and_confirm(browser, demo_stack, "scanner", phone="13800136183")
    assert "Chrome 120 on Linux" in scanned.text  # what the confirm page showed

    # The waiting page learns it without a reload, shows who confirmed, and waits for the
    # person (RFC 6749 §10.12): nothing signs in by itself.
    who = wait_for(driver, expected_conditions.visibility_of_element_located(
        (By.ID, "wechat-scan-who")))
    assert "138****6183" in who.text
    assert "/login" in driver.current_url and demo_stack.rp_url not in driver.current_url
    shot(driver, "scan-02-who-confirmed")
    driver.find_element(By.ID, "wechat-scan-continue").click()
    # The OAuth flow goes on to the website.
    wait_for(driver, expected_conditions.url_contains(demo_stack.rp_url))
    claims = id_token_claims(driver)
    shot(driver, "scan-03-website")
    assert claims["amr"] == ["wechat_scan"]
    assert claims["iss"] == demo_stack.idp_url
    userinfo = browser.submit(scanned, "/miniprogram/userinfo")
    assert claims["sub"] in userinfo.text  # the mini-program's user is now on the computer
    no_console_errors(driver)


def scan_and_confirm(
    browser: Browser, stack: DemoStack, user: str, phone: str | None = None
) -> Any:
    """The demo's simulated mini-program: wx.login (and getPhoneNumber), then it scans the code
    the IdP last drew and confirms."""
    page = browser.get(f"{stack.rp_url}/miniprogram")
    logged_in = browser.submit(page, "/miniprogram/login", user=user)
    assert 'id="last-status">200<' in logged_in.text, logged_in.text[:2000]
    if phone:
        logged_in = browser.submit(logged_in, "/miniprogram/phone", phone=phone)
        assert 'id="last-status">200<' in logged_in.text, logged_in.text[:2000]
    scanned = browser.submit(logged_in, "/miniprogram/scan")
    assert 'id="last-status">200<' in scanned.text, scanned.text[:3000]
    assert "&#34;status&#34;: &#34;confirmed&#34;" in scanned.text
    return scanned


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (outer["x"] < inner["x"] and inner["x"] + inner["width"] < outer["x"] + outer["width"]
            and outer["y"] < inner["y"]
            and inner["y"] + inner["height"] < outer["y"] + outer["height"])


def code_shown(driver: Any) -> Any:
    return wait_for(driver, lambda d: d.execute_script(
        "const i = document.getElementById('wechat-scan-code');"
        " return i && i.complete && i.naturalWidth > 0 ? i : null;"))


def test_a_scan_confirmed_by_someone_else_is_cancelled_and_signs_nobody_in__rfc6749_10_12(
    demo_stack: DemoStack, desktop: Any, browser: Browser
) -> None:
    """Someone who can see the victim's screen confirms the code with their own mini-program:
    the victim's browser names that account and, on Cancel, stays signed out."""
    driver = desktop
    driver.get(demo_stack.rp_url + "/")
    driver.find_element(By.LINK_TEXT, "Log in with the IdP").click()
    wait_for(driver, expected_conditions.url_contains("/login"))
    code_shown(driver)
    login_url = driver.current_url
    scan_and_confirm(browser, demo_stack, "onlooker", phone="13900139999")
    who = wait_for(driver, expected_conditions.visibility_of_element_located(
        (By.ID, "wechat-scan-who")))
    assert "139****9999" in who.text
    shot(driver, "scan-cancel-01-who")
    driver.find_element(By.CSS_SELECTOR, "#wechat-scan-cancel button").click()
    flash = wait_for(driver, expected_conditions.visibility_of_element_located(
        (By.CSS_SELECTOR, "p.flash")))
    assert "Sign-in cancelled" in flash.text
    assert driver.current_url == login_url  # back at the same sign-in, nobody signed in
    code_shown(driver)  # and a fresh code to scan
    driver.get(demo_stack.idp_url + "/account")
    assert "/login" in driver.current_url
    shot(driver, "scan-cancel-02-login")
    no_console_errors(driver)


def test_an_expired_code_is_dimmed_under_show_a_new_code(
    demo_stack: DemoStack, desktop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.wechat_login import scan

    monkeypatch.setattr(scan, "TICKET_TTL", 2.0)
    driver = desktop
    driver.get(demo_stack.idp_url + "/login")
    code = code_shown(driver)
    assert float(code.value_of_css_property("opacity")) == 1.0
    renew = wait_for(driver, expected_conditions.visibility_of_element_located(
        (By.ID, "wechat-scan-renew")))
    assert "expired" in driver.find_element(By.ID, "wechat-scan-status").text
    shot(driver, "scan-expired")
    assert float(code.value_of_css_property("opacity")) <= 0.2
    assert "blur" in code.value_of_css_property("filter")
    # The button sits on the spent code, inside its square.
    assert inside(renew.rect, code.rect)
    monkeypatch.setattr(scan, "TICKET_TTL", 120.0)
    renew.click()
    wait_for(driver, lambda d: d.execute_script(
        "const i = document.getElementById('wechat-scan-code');"
        " return i && i.complete && getComputedStyle(i).opacity === '1';"))
    assert not renew.is_displayed()
    no_console_errors(driver)


def test_a_code_that_cannot_be_drawn_shows_no_broken_image(
    demo_stack: DemoStack, desktop: Any
) -> None:
    demo_stack.fake.control.arm_failure("/wxa/getwxacodeunlimit", errcode=41030)
    driver = desktop
    driver.get(demo_stack.idp_url + "/login")
    status = driver.find_element(By.ID, "wechat-scan-status")
    wait_for(driver, lambda d: "cannot be shown" in status.text)
    shot(driver, "scan-unavailable")
    # No <img> at all in the card: one whose source failed is the broken-image icon.
    assert driver.find_elements(By.CSS_SELECTOR, "#wechat-scan img") == []
    renew = driver.find_element(By.ID, "wechat-scan-renew")
    assert renew.is_displayed()
    renew.click()  # WeChat draws it this time
    code_shown(driver)
    assert "Scan with WeChat" in status.text


def test_inside_wechat_the_official_account_signs_in(
    demo_stack: DemoStack, in_wechat: Any
) -> None:
    driver = in_wechat
    driver.get(demo_stack.rp_url + "/")
    driver.find_element(By.LINK_TEXT, "Log in with the IdP").click()
    wait_for(driver, expected_conditions.url_contains("/login"))
    assert driver.find_elements(By.ID, "wechat-scan") == []  # nobody scans their own screen
    shot(driver, "oa-01-login")
    driver.find_element(By.LINK_TEXT, "Sign in with WeChat").click()
    # snsapi_base found nobody, so WeChat asks (snsapi_userinfo): its consent page.
    allow = wait_for(driver, expected_conditions.element_to_be_clickable((By.ID, "allow")))
    shot(driver, "oa-02-wechat-consent")
    allow.click()
    create = wait_for(driver, expected_conditions.element_to_be_clickable(
        (By.CSS_SELECTOR, "button[value=create]")))
    shot(driver, "oa-03-choose")
    create.click()
    claims = id_token_claims(driver)
    shot(driver, "oa-04-website")
    assert claims["amr"] == ["wechat"]
    no_console_errors(driver)
