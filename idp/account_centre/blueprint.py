"""The `account_centre` blueprint and the two guards of its views: signed in, and recently."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, request, url_for
from flask_babel import gettext as _

from idp.accounts.sessions import current_account, current_session
from idp.identity.models import Account, LoginSession
from idp.models_base import utcnow

bp = Blueprint("account_centre", __name__, url_prefix="/account")


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view runs with `g.account` and `g.login_session`; others go to the login page."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        account = current_account()
        if account is None:
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        g.account = account
        return view(*args, **kwargs)

    return wrapper


def recently_authenticated(row: LoginSession | None) -> bool:
    """The user proved who they are (signed in or re-authenticated) within IDP_REAUTH_SECONDS."""
    if row is None:
        return False
    window = timedelta(seconds=int(current_app.config["IDP_REAUTH_SECONDS"]))
    return utcnow() - row.auth_time <= window


def fresh_auth(
    view: Callable[..., Any] | None = None, *, back: str = "account_centre.overview"
) -> Any:
    """Sensitive changes (adding or removing a way in, phone, password, factors, a merge,
    deletion) need a proof of the last minutes (ASVS V3.7.1; NIST SP 800-63B §6.1.2.1):
    otherwise the user is sent to re-authenticate and comes back to what they were doing.

    Back to this page for a GET, or for a form posted to the page it came from; for a POST-only
    action, to the page `back` names (its button is there). A JSON call gets a 403 whose
    `reauth` the script follows, since a redirect would hand it a page."""

    def decorate(inner: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(inner)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if recently_authenticated(current_session()):
                return inner(*args, **kwargs)
            target = url_for("account_centre.reauth", next=_way_back(back))
            if request.is_json:
                return jsonify(error=_("Please confirm it is you before this change."),
                               reauth=target), 403
            flash(_("Please confirm it is you before this change."), "info")
            return redirect(target)

        return wrapper

    return decorate(view) if view is not None else decorate


def _way_back(back: str) -> str:
    if request.method == "GET":
        return request.full_path.rstrip("?")
    rule = request.url_rule
    if rule is not None and rule.methods and "GET" in rule.methods:
        return request.path  # the form's own page; what was typed is not carried along
    return url_for(back)


def path_id(value: str, limit: int = 64) -> str:
    """An identifier from the URL: printable and short, or 404 (PostgreSQL refuses a NUL byte
    in text, so it must never reach a query)."""
    if not value or len(value) > limit or not value.isprintable():
        abort(404)
    return value


def me() -> Account:
    return g.account
