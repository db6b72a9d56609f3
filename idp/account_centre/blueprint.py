"""The `account_centre` blueprint and the two guards of its views: signed in, and recently."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, request, url_for
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


def fresh_auth(view: Callable[..., Any]) -> Callable[..., Any]:
    """Sensitive changes (phone, password, factors, deletion) need a proof of the last minutes:
    otherwise the user is sent to re-authenticate and comes back here."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not recently_authenticated(current_session()):
            flash(_("Please confirm it is you before this change."), "info")
            # A form sent too late goes back to the page it came from, not to its POST URL.
            back = (request.full_path.rstrip("?") if request.method == "GET"
                    else url_for("account_centre.overview"))
            return redirect(url_for("account_centre.reauth", next=back))
        return view(*args, **kwargs)

    return wrapper


def path_id(value: str, limit: int = 64) -> str:
    """An identifier from the URL: printable and short, or 404 (PostgreSQL refuses a NUL byte
    in text, so it must never reach a query)."""
    if not value or len(value) > limit or not value.isprintable():
        abort(404)
    return value


def me() -> Account:
    return g.account
