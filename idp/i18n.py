"""The language switch: a cookie that `create_app`'s locale selector reads before `ui_locales`
and Accept-Language."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, request
from flask_babel import get_locale

from idp.accounts.views import safe_next

bp = Blueprint("i18n", __name__)

LOCALE_COOKIE = "idp_locale"
LANGUAGES = {"en": "English", "zh_CN": "中文"}
ONE_YEAR = 365 * 24 * 3600


@bp.get("/locale/<locale>")
def switch(locale: str) -> Any:
    if locale not in LANGUAGES:
        abort(404)
    response = redirect(safe_next(request.args.get("next")))
    response.set_cookie(
        LOCALE_COOKIE,
        locale,
        max_age=ONE_YEAR,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return response


def current_language() -> str:
    """The key of `LANGUAGES` in use. `get_locale()` is a Babel `Locale` whose string is the
    likely-subtags form (`zh_Hans_CN` for `zh_CN`), so it is never compared as a string."""
    locale = get_locale()
    return "zh_CN" if locale is not None and locale.language == "zh" else "en"


def html_lang() -> str:
    """The BCP 47 tag for `<html lang>` (WCAG 3.1.1): `zh-CN` or `en`."""
    return current_language().replace("_", "-")


@bp.app_context_processor
def locale_helpers() -> dict[str, Any]:
    """In every template: `html_lang()` for `<html lang>`, `current_language()` for the switch."""
    return {"get_locale": get_locale, "html_lang": html_lang, "current_language": current_language}
