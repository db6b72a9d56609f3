"""Messages a screen reader can find (WCAG 3.3.1, 4.1.3).

A page-level error is flashed; it is announced (`role="alert"`), and the field that autofocus
lands on is marked `aria-invalid` and described by it, so focus arriving on the field reads the
error too. Information ("your password has been changed") is `role="status"`, never an alert.
A form field's own error sits next to it, tied by `aria-describedby`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, get_flashed_messages
from flask_babel import lazy_gettext
from markupsafe import Markup, escape
from werkzeug.exceptions import default_exceptions

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


def mark_invalid(form: Any) -> str:
    """For forms whose fields render themselves (`form.name()`): each field with errors gets
    `aria-invalid` and `aria-describedby` pointing at `field_errors(field)`. Returns ""."""
    for field in form:
        if field.errors:
            field.render_kw = {
                **(field.render_kw or {}),
                "aria-invalid": "true",
                "aria-describedby": error_id(field),
            }
    return ""


def field_errors(field: Any) -> Markup:
    """The field's own errors, in one element its `aria-describedby` points at."""
    if not getattr(field, "errors", None):
        return Markup("")
    text = Markup(" ").join(escape(str(error)) for error in field.errors)
    return Markup('<p class="field-error" id="{}">{}</p>').format(error_id(field), text)


# What a person reads on an error page, by HTTP status, when the view gave no message of its own
# (werkzeug's default descriptions are English sentences meant for developers).
STATUS_TEXTS = {
    400: lazy_gettext("This request could not be understood. Go back and try again."),
    403: lazy_gettext("You are not allowed to open this page."),
    404: lazy_gettext("There is no page at this address."),
    405: lazy_gettext("This page cannot be used that way."),
    413: lazy_gettext("What was sent is too large."),
    429: lazy_gettext("Too many requests. Please wait a moment and try again."),
    500: lazy_gettext("Something went wrong on our side. Please try again later."),
    503: lazy_gettext("This service is busy. Please try again in a moment."),
}

# The protocol errors a person may meet on the authorization endpoint (RFC 6749 §4.1.2.1,
# OIDC Core §3.1.2.6), said in words; the code and Authlib's description stay below as details.
OAUTH_ERROR_TEXTS = {
    "invalid_client": lazy_gettext("The site that sent you here is not known to us."),
    "invalid_request": lazy_gettext("The site that sent you here made a request we cannot use."),
    "invalid_scope": lazy_gettext("The site that sent you here asked for access we do not give."),
    "unauthorized_client": lazy_gettext("The site that sent you here may not sign in this way."),
    "unsupported_response_type": lazy_gettext(
        "The site that sent you here made a request we cannot use."
    ),
    "invalid_grant": lazy_gettext("This sign-in request has expired or was already used."),
    "access_denied": lazy_gettext("Access was refused."),
}


def error_text(status: int, message: str | None) -> str:
    """The view's own message if it gave one, else a translated sentence for the status."""
    default = default_exceptions.get(status)
    if message and not (default is not None and message == default.description):
        return message
    return str(STATUS_TEXTS.get(status, lazy_gettext("The request could not be completed.")))


def oauth_error_text(error: str | None) -> str:
    text = OAUTH_ERROR_TEXTS.get(error or "")
    return str(text) if text else ""


def init_app(app: Flask) -> None:
    @app.context_processor
    def message_helpers() -> dict[str, Any]:
        return {
            "page_messages": page_messages,
            "invalid_attributes": invalid_attributes,
            "field_errors": field_errors,
            "mark_invalid": mark_invalid,
            "error_text": error_text,
            "oauth_error_text": oauth_error_text,
        }
