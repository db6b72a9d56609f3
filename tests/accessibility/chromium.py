"""Debian's headless Chromium through chromedriver, sized like a phone (390×844), as the audit of
issue 19 used it; the tests skip with a reason when the browser is not installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE = (390, 844)


def start_chromium(width: int = PHONE[0], height: int = PHONE[1]) -> Any:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed "
            "(`apt-get install chromium chromium-driver`; .ci/run does it)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", f"--window-size={width},{height}", "--lang=en-US"):
        options.add_argument(argument)
    # A headless window is never narrower than 500 px: a phone's screen is emulated instead.
    options.add_experimental_option(
        "mobileEmulation", {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 3}}
    )
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(60)
    return driver


def page_width(driver: Any) -> int:
    """How wide the page is drawn, against how wide the screen is."""
    return int(driver.execute_script("return document.documentElement.scrollWidth"))


def screen_width(driver: Any) -> int:
    """The layout viewport: a page wider than it makes a phone zoom out, not this grow."""
    return int(driver.execute_script("return document.documentElement.clientWidth"))
