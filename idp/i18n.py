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


@bp.app_context_processor
def locale_helpers() -> dict[str, Any]:
    """`get_locale()` in every template: the `lang` attribute and the switch use it."""
    return {"get_locale": get_locale}
