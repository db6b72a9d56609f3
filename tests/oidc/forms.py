"""Submits an HTML form the way a browser does: its hidden inputs, in order, plus the one button
clicked (its name and value), to the form's action."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from werkzeug.datastructures import MultiDict


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: list[tuple[str, str]] = []
        self.buttons: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action = attributes.get("action", "")
        elif tag == "input" and attributes.get("type") == "hidden" and "name" in attributes:
            self.fields.append((attributes["name"], attributes.get("value", "")))
        elif tag == "button" and "name" in attributes:
            self.buttons.append((attributes["name"], attributes.get("value", "")))


def hidden_fields(html: str) -> list[tuple[str, str]]:
    reader = _FormReader()
    reader.feed(html)
    return reader.fields


def click(browser: Any, page: Any, value: str) -> Any:
    """Posts the page's form as if the button with this value was clicked."""
    reader = _FormReader()
    reader.feed(page.get_data(as_text=True))
    clicked = [button for button in reader.buttons if button[1] == value]
    assert clicked, f"no button {value!r} in {reader.buttons}"
    return browser.post(reader.action, data=MultiDict([*reader.fields, clicked[0]]))
