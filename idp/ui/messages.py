"""Messages a screen reader can find (WCAG 3.3.1, 4.1.3).

A page-level error is flashed; it is announced (`role="alert"`), and the field that autofocus
lands on is marked `aria-invalid` and described by it, so focus arriving on the field reads the
error too. Information ("your password has been changed") is `role="status"`, never an alert.
A form field's own error sits next to it, tied by `aria-describedby`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, get_flashed_messages
from markupsafe import Markup, escape

ALERT_CATEGORIES = frozenset({"error", "warn"})


def page_messages() -> list[dict[str, str]]:
    """The flashed messages of this request with an id and a role each (flashes are read once
    per request and cached, so the page and its fields see the same list)."""
    return [
        {
            "id": f"message-{number}",
            "category": category,
            "role": "alert" if category in ALERT_CATEGORIES else "status",
            "text": text,
        }
        for number, (category, text) in enumerate(
            get_flashed_messages(with_categories=True), start=1
        )
    ]


def error_id(field: Any) -> str:
    return f"{field.id or field.name}-error"


def invalid_attributes(field: Any = None, page_errors: bool = False) -> Markup:
    """`aria-invalid` and `aria-describedby` for a field: its own errors, and with `page_errors`
    the page's error messages (for the field that autofocus lands on)."""
    described_by = []
    if field is not None and getattr(field, "errors", None):
        described_by.append(error_id(field))
    if page_errors:
        described_by += [m["id"] for m in page_messages() if m["role"] == "alert"]
    if not described_by:
        return Markup("")
    return Markup(' aria-invalid="true" aria-describedby="{}"').format(" ".join(described_by))


def field_errors(field: Any) -> Markup:
    """The field's own errors, in one element its `aria-describedby` points at."""
    if not getattr(field, "errors", None):
        return Markup("")
    text = Markup(" ").join(escape(str(error)) for error in field.errors)
    return Markup('<p class="field-error" id="{}">{}</p>').format(error_id(field), text)


def init_app(app: Flask) -> None:
    @app.context_processor
    def message_helpers() -> dict[str, Any]:
        return {
            "page_messages": page_messages,
            "invalid_attributes": invalid_attributes,
            "field_errors": field_errors,
        }
