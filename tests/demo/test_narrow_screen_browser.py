"""The sign-in pages on a phone-sized screen (390 CSS px, an iPhone 12–15), in real headless
Chromium against the demo stack: layout assertions, and screenshots under tests/_screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.demo.conftest import DemoStack
from tests.demo.test_wechat_browser import DESKTOP_UA, SCREENSHOTS, chromium, no_console_errors

WIDTH = 390
PHONE_TYPED = "13700137001"


@pytest.fixture
def phone_screen() -> Iterator[Any]:
    driver = chromium(DESKTOP_UA)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": WIDTH, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        yield driver
    finally:
        driver.quit()


def test_the_terms_label_reads_as_one_paragraph_beside_its_box_at_390_px(
    demo_stack: DemoStack, phone_screen: Any
) -> None:
    driver = phone_screen
    driver.get(demo_stack.idp_url + "/login")
    assert driver.execute_script("return window.innerWidth") == WIDTH
    driver.find_element(By.NAME, "phone").send_keys(PHONE_TYPED)
    driver.find_element(By.CSS_SELECTOR, "#sms-form button[type=submit]").click()
    label = WebDriverWait(driver, 20).until(expected_conditions.visibility_of_element_located(
        (By.CSS_SELECTOR, "label.checkbox")))
    label.location_once_scrolled_into_view  # noqa: B018  (scrolls it into the screenshot)
    driver.save_screenshot(str(SCREENSHOTS / "narrow-390-terms.png"))
    layout = driver.execute_script("""
        const label = arguments[0];
        // Each piece of text of the label (links' text included), in reading order, with the
        // top of its first and of its last line box.
        const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
        const pieces = [];
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          if (!node.textContent.trim()) continue;
          const range = document.createRange();
          range.selectNodeContents(node);
          const rects = Array.from(range.getClientRects()).filter(r => r.width > 0);
          pieces.push({text: node.textContent.trim(), first: rects[0].top,
                       last: rects[rects.length - 1].top});
        }
        return {pieces: pieces, height: label.getBoundingClientRect().height,
                lineHeight: parseFloat(getComputedStyle(label).lineHeight)};
    """, label)
    # One paragraph beside the box: each piece starts no higher than the line the previous one
    # ended on (side-by-side columns would start every piece on the first line), and the whole
    # wraps onto at most three lines.
    pieces = layout["pieces"]
    assert [piece["text"] for piece in pieces][1] == "terms of service"
    for before, after in zip(pieces, pieces[1:], strict=False):
        assert after["first"] >= before["last"] - 1, pieces
    assert layout["height"] <= 3 * layout["lineHeight"] + 1, layout
    no_console_errors(driver)
