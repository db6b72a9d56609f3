"""Back after signing out must not show the signed-in page from the browser's cache: pages for a
signed-in person are `Cache-Control: no-store` (issue 10, item 18). Headless Chromium, real HTTP
on loopback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from idp import create_app
from idp.extensions import db

# The admin UI's Chromium helpers; that module skips when selenium or Chromium is missing.
from tests.admin.test_browser import CHROMEDRIVER, CHROMIUM, _fill, _go, _wait_for
from tests.conftest import PASSWORD, base_config

webdriver = pytest.importorskip("selenium.webdriver")
By = pytest.importorskip("selenium.webdriver.common.by").By

PHONE = "+8613800138000"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The IdP on a loopback port, with one password user; yields (base URL, account id)."""
    from idp.accounts.seed import create_password_user

    tmp = tmp_path_factory.mktemp("back")
    app = create_app(base_config(tmp, f"sqlite:///{tmp / 'idp.sqlite3'}"))
    with app.app_context():
        db.create_all()
        account_id = create_password_user(PHONE, PASSWORD, name="Alice").id
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", account_id
    finally:
        server.shutdown()
        thread.join(5)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    )
    try:
        yield driver
    finally:
        driver.quit()


def test_back_after_sign_out_does_not_show_the_account_page(
    served: tuple[str, str], browser: Any
) -> None:
    base, account_id = served
    driver = browser
    driver.get(f"{base}/login?next=/account")
    _fill(driver, "identifier", PHONE)
    _fill(driver, "password", PASSWORD)
    _go(driver, By.CSS_SELECTOR, "form[action$='/login'] button[type=submit]")
    _wait_for(driver, "form[action$='/logout']")
    assert account_id in driver.page_source

    _go(driver, By.CSS_SELECTOR, "form[action$='/logout'] button[type=submit]")
    _wait_for(driver, "input[name=password]")
    driver.back()

    assert account_id not in driver.page_source
    assert driver.find_elements(By.NAME, "password")
