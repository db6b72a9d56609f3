"""The language switch: a cookie that `create_app`'s locale selector reads before `ui_locales`
and Accept-Language.

An RP's `ui_locales` (OIDC Core §3.1.2.1) is remembered for the browser session in a cookie of its
own, so the language it asked for lasts through login, registration, the WeChat pages and error
pages, which do not carry the parameter; the switch, being the user's own choice, still wins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask_babel import get_locale

from idp.accounts.views import safe_next

bp = Blueprint("i18n", __name__)

LOCALE_COOKIE = "idp_locale"
UI_LOCALES_COOKIE = "idp_ui_locale"
# Pages answering a one-time callback: reloading them would replay a spent code, so the switch
# sends the browser to the sign-in page instead.
ONE_TIME_ENDPOINTS = {"wechat_login.callback"}
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
        secure=secure_cookies(),
    )
    return response


def secure_cookies() -> bool:
    """An https issuer makes every cookie `Secure` (as the session's, `SESSION_COOKIE_SECURE`),
    even when TLS ends at a proxy and the request reaching the app is plain http."""
    return bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def language_of(ui_locales: str) -> str | None:
    """The first of the space-separated BCP 47 tags that names a language of this site."""
    for candidate in ui_locales.replace("-", "_").split():
        if candidate.lower().startswith("zh"):
            return "zh_CN"
        if candidate.lower().startswith("en"):
            return "en"
    return None


@bp.after_app_request
def remember_ui_locales(response: Any) -> Any:
    language = language_of(request.args.get("ui_locales", "")[:200])
    if language and request.cookies.get(UI_LOCALES_COOKIE) != language:
        response.set_cookie(
            UI_LOCALES_COOKIE, language, httponly=True, samesite="Lax", secure=secure_cookies()
        )
    return response


def switch_next() -> str:
    """Where the switch returns to: this page, unless reloading it would replay a callback."""
    if request.endpoint in ONE_TIME_ENDPOINTS:
        return url_for("accounts.login")
    return request.full_path.rstrip("?")


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
    return {
        "get_locale": get_locale,
        "html_lang": html_lang,
        "current_language": current_language,
        "switch_next": switch_next,
    }
