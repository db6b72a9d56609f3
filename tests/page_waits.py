"""A wait shared by the Chromium tests: the page an action left has been replaced.

Selenium's `staleness_of` expects StaleElementReferenceException only; while a navigation is
under way chromedriver may instead answer "Node with given id does not belong to the document"
(a plain WebDriverException) for the old page's element. Both mean the old page is gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException


def page_replaced(old: Any) -> Callable[[Any], bool]:
    def gone(_driver: Any) -> bool:
        try:
            old.is_enabled()
        except (StaleElementReferenceException, WebDriverException):
            return True
        return False

    return gone
