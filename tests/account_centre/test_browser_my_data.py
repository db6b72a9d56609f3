# ruff: noqa: F811 - the fixtures come from tests/account_centre/test_browser.py
""""Who received my data" and "Download my data" clicked through in headless Chromium, in English
and in Simplified Chinese (issue 28 items 4 and 5): the apps page names the app, the claims it
received and when; withdrawing consent kills its refresh token and leaves it under "received
before"; the download, after confirming it is you, saves a JSON file of the account's own data."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from idp.extensions import db

# Through test_browser: it skips the module when selenium or Chromium is missing.
from tests.account_centre.test_browser import (  # noqa: F401 - fixtures
    WAIT_SECONDS,
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
from tests.conftest import PASSWORD, CodeFlow, login

TEXTS = {
    "en": {"withdraw": "Withdraw consent", "removed": "Access removed",
           "before": "Apps that received your data before", "download": "Download my data"},
    "zh_CN": {"withdraw": "撤回同意", "removed": "已取消授权",
              "before": "曾经收到过你数据的应用", "download": "下载我的数据"},
}
LANGUAGES = sorted(TEXTS)


def _in_language(browser: Any, served: Served, language: str) -> None:
    if language != "en":
        browser.get(f"{served.url}/locale/{language}?next=/healthz")


def _connect_an_app(served: Served, phone: str, name: str) -> tuple[str, str, dict[str, Any]]:
    from idp.oidc.clients import create_client

    with served.app.app_context():
        rp, secret = create_client(name=name, redirect_uris=["https://shop.example/callback"])
        rp_browser = served.app.test_client()
        login(rp_browser, phone)
        flow = CodeFlow(rp_browser, rp, secret, "https://shop.example/callback")
        tokens = flow.tokens(scope="openid phone offline_access")
        return rp.client_id, secret or "", tokens


@pytest.mark.parametrize("language", LANGUAGES)
def test_who_received_my_data_then_withdraw_consent(
    browser: Any, served: Served, language: str
) -> None:
    texts = TEXTS[language]
    _account, phone = served.user()
    client_id, secret, tokens = _connect_an_app(served, phone, f"Data shop {language}")
    _in_language(browser, served, language)
    _sign_in(browser, served, phone, "/account/apps")
    card = browser.find_element(By.CSS_SELECTOR, f"#apps li[data-client='{client_id}']")
    assert f"Data shop {language}" in card.text
    assert "phone_number" in card.find_element(By.CSS_SELECTOR, "dd.claims").text
    assert len(card.find_elements(By.TAG_NAME, "time")) == 2  # first and latest
    _shot(browser, f"data-01-who-received-{language}")
    button = card.find_element(By.CSS_SELECTOR, "button.revoke")
    assert button.text == texts["withdraw"]
    _go(browser, By.CSS_SELECTOR, f"#apps li[data-client='{client_id}'] button.revoke")
    assert texts["removed"] in _flash(browser)
    past = browser.find_element(By.ID, "past-recipients")
    assert f"Data shop {language}" in past.text and "phone_number" in past.text
    assert texts["before"] in browser.find_element(By.TAG_NAME, "main").text
    _shot(browser, f"data-02-withdrawn-{language}")
    with served.app.app_context():
        refreshed = served.app.test_client().post("/oauth/token", auth=(client_id, secret), data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 400
    _no_console_errors(browser)


def _downloads_to(browser: Any, folder: Path) -> None:
    browser.execute_cdp_cmd("Browser.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(folder)})


def _downloaded(browser: Any, folder: Path) -> dict[str, Any]:
    """The saved file, once Chromium has finished writing it (it renames a `.crdownload`)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def finished(_driver: Any) -> Path | None:
        return next(iter(folder.glob("my-data-*.json")), None)

    path = WebDriverWait(browser, WAIT_SECONDS).until(finished)
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_download_my_data_after_confirming_it_is_you(
    browser: Any, served: Served, language: str, tmp_path: Path
) -> None:
    from idp.identity.models import LoginSession

    texts = TEXTS[language]
    account_id, phone = served.user(name="Data person")
    other_id, _other_phone = served.user(name="Someone else")
    _connect_an_app(served, phone, f"Export shop {language}")
    _in_language(browser, served, language)
    _sign_in(browser, served, phone, "/account/data")
    with served.app.app_context():  # the sign-in is older than the re-authentication window
        window = int(served.app.config["IDP_REAUTH_SECONDS"])
        for row in db.session.scalars(
                select(LoginSession).where(LoginSession.account_id == account_id)):
            row.auth_time = row.auth_time - timedelta(seconds=window + 60)
        db.session.commit()
    button = browser.find_element(By.ID, "download-my-data")
    assert button.text == texts["download"]
    _shot(browser, f"data-03-download-page-{language}")
    _go(browser, By.ID, "download-my-data")
    assert "/account/reauth" in browser.current_url
    _fill(browser, "pw-password", PASSWORD)
    _go(browser, By.CSS_SELECTOR, "#reauth-password button")
    assert browser.current_url.endswith("/account/data")
    _downloads_to(browser, tmp_path)
    browser.find_element(By.ID, "download-my-data").click()
    document = _downloaded(browser, tmp_path)
    assert document["sub"] == account_id
    assert document["profile"]["claims"]["name"] == "Data person"
    assert [app["name"] for app in document["apps"]] == [f"Export shop {language}"]
    assert other_id not in json.dumps(document) and "Someone else" not in json.dumps(document)
    assert browser.current_url.endswith("/account/data")  # the page stays; the file is saved
    _no_console_errors(browser)
