"""Two detours a signed-in browser takes before anything else: a second factor still to give
after the first, and an account whose deletion is pending (signing in offers to cancel it)."""

from __future__ import annotations

from typing import Any

from flask import Flask, redirect, request, session, url_for

from idp.accounts.sessions import SESSION_KEY, session_awaiting_second_factor, signed_in

# Endpoints a detoured browser may still reach.
ALWAYS_OPEN = frozenset({"static", "accounts.logout", "i18n.switch", "health.healthz",
                         "health.readyz"})
SECOND_FACTOR_STEP = frozenset({"account_centre.second_factor",
                                "account_centre.second_factor_passkey_options",
                                "account_centre.second_factor_passkey"})
DELETION_PENDING = frozenset({"account_centre.deletion_pending",
                              "account_centre.cancel_deletion_view"})
# Machine endpoints answer for their bearer token or client, whatever cookie comes along.
NOT_PAGES = ("/oauth/token", "/oauth/userinfo", "/oauth/introspect", "/oauth/revoke",
             "/oauth/jwks", "/.well-known/", "/wechat/", "/api/", "/account/api/", "/metrics")


def init_gate(app: Flask) -> None:
    @app.before_request
    def detour() -> Any:
        # Only page views are detoured; the safety is elsewhere: a session awaiting its second
        # factor signs nobody in (`current_session`), and deletion ended every session.
        if request.method != "GET" or request.path.startswith(NOT_PAGES):
            return None
        if SESSION_KEY not in session or request.endpoint in ALWAYS_OPEN:
            return None
        if request.endpoint is None or request.blueprint == "admin":
            return None  # 404s, and the admin area which has its own second factor
        live = signed_in()  # None for a session still awaiting its second factor
        if live is None and session_awaiting_second_factor() is not None:
            if request.endpoint in SECOND_FACTOR_STEP:
                return None
            return redirect(url_for("account_centre.second_factor", next=_here()))
        if live is not None and live.account.deletion_due_at is not None:
            if request.endpoint in DELETION_PENDING:
                return None
            return redirect(url_for("account_centre.deletion_pending", next=_here()))
        return None


def _here() -> str:
    return request.full_path.rstrip("?") if request.method == "GET" else ""
