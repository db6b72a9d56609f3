"""Who may open an admin page: a live IdP session of an active admin account, with TOTP enrolled
and passed in this same session, holding a role that may carry out the page's action.

Every admin endpoint names its action in `ROUTE_ACTIONS` (the role × action table is
`idp.staff.permissions.ACTIONS`); an endpoint missing from it is refused to everybody, so a new
page is closed until someone decides who may use it.

Admin sessions as 等保 2.0 asks (issue 27 item 5): an admin idle for `IDP_ADMIN_IDLE_MINUTES`
(15) or signed in for longer than `IDP_ADMIN_MAX_HOURS` (8) has their IdP session ended and signs
in again; a role grant, a key rotation and a reveal of personal data need the second factor
passed within `IDP_REAUTH_SECONDS` (300). Wrong TOTP codes are throttled
(`idp.second_factor.admin_totp`), wrong passwords by the login's own throttle, both answering with
the wait.

The "TOTP passed" mark lives in the signed session cookie bound to the IdP session id: it dies
with that session (logout, expiry, a merge, disabling) because `current_session()` checks the
row, and a new login clears the cookie (`start_session`). It also expires after
`PASSED_FOR_SECONDS`, so a long-lived session is asked again.
"""

from __future__ import annotations

import time
from typing import Any

from flask import abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _

from idp.accounts.sessions import current_session, end_session
from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account, LoginSession
from idp.models_base import utcnow
from idp.staff.permissions import may
from idp.staff.roles import roles_of

TOTP_PASSED_KEY = "admin_totp_passed"
PASSED_FOR_SECONDS = 12 * 3600
# Pages an admin reaches before the second factor: enrolment and the code prompt.
BEFORE_SECOND_FACTOR = frozenset({"admin.totp_enrol", "admin.totp_verify"})
SEEN_KEY = "admin_seen_at"
DEFAULT_IDLE_MINUTES = 15
DEFAULT_MAX_HOURS = 8
# Changes that ask for the second factor again when it was passed longer ago than
# IDP_REAUTH_SECONDS: endpoint -> the page to come back to.
REAUTH_ENDPOINTS = {
    "admin.admin_grant": "admin.admins",
    "admin.keys_rotate": "admin.keys",
    "admin.identity_reveal": None,  # its own page
}

# endpoint -> action (both methods of a page: its GET shows what its POST would do).
ROUTE_ACTIONS: dict[str, str] = {
    "admin.totp_enrol": "second_factor",
    "admin.totp_verify": "second_factor",
    "admin.dashboard": "reports.read",
    "admin.accounts": "accounts.read",
    "admin.account_detail": "accounts.read",
    "admin.identity_reveal": "personal_data.reveal",
    "admin.session_end": "sessions.end",
    "admin.token_revoke": "sessions.end",
    "admin.reset_code": "password_reset.send",
    "admin.account_disable": "accounts.disable",
    "admin.account_enable": "accounts.disable",
    "admin.identity_unlink": "identities.unlink",
    "admin.identity_move": "merges.propose",
    "admin.account_claims": "accounts.claims",
    "admin.merge_preview": "merges.propose",
    "admin.merge_confirm": "merges.propose",
    "admin.merges": "merges.history",
    "admin.merge_undo": "merges.propose",
    "admin.proposals": "merges.propose",
    "admin.proposal_detail": "merges.propose",
    "admin.proposal_approve": "merges.carry_out",
    "admin.proposal_decline": "merges.propose",
    "admin.suggestions": "suggestions.review",
    "admin.suggestions_run": "suggestions.review",
    "admin.suggestion_dismiss": "suggestions.review",
    "admin.deletions": "deletions.manage",
    "admin.deletion_erase": "deletions.manage",
    "admin.deletion_cancel": "deletions.manage",
    "admin.clients": "clients.manage",
    "admin.client_create": "clients.manage",
    "admin.client_edit": "clients.manage",
    "admin.client_rotate_secret": "clients.manage",
    "admin.wechat_apps": "wechat_apps.manage",
    "admin.keys": "keys.manage",
    "admin.keys_rotate": "keys.manage",
    "admin.key_retire": "keys.manage",
    "admin.data_dictionary": "data_dictionary.manage",
    "admin.tokens_revoke_all": "tokens.revoke_all",
    "admin.events": "events.read",
    "admin.event_retry": "events.retry",
    "admin.admins": "admins.manage",
    "admin.admin_grant": "admins.manage",
    "admin.admin_revoke": "admins.manage",
    "admin.audit_trail": "audit.read",
}


def require_admin() -> Any:
    login_session = current_session()
    if login_session is None:
        return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
    account = db.session.get(Account, login_session.account_id)
    roles = roles_of(account.id) if account is not None and account.is_admin else frozenset()
    if account is None or not roles:
        abort(403)
    g.admin = account
    g.admin_roles = roles
    g.admin_session = login_session
    expired = _session_expired(login_session)
    if expired:
        audit.record("admin.session_end", Actor.admin(account.id), account.id, reason=expired)
        end_session(login_session.id)  # commits
        flash(_("Your admin session ended after a while without activity. Sign in again.")
              if expired == "idle" else
              _("Your admin session reached its maximum length. Sign in again."), "info")
        return redirect(url_for("accounts.login", next=_here()))
    session[SEEN_KEY] = int(time.time())
    if not may(roles, ROUTE_ACTIONS.get(request.endpoint or "", "")):
        abort(403)
    if request.endpoint in BEFORE_SECOND_FACTOR:
        return None
    if not account.totp_secret_encrypted:
        return redirect(url_for("admin.totp_enrol", next=_here()))
    if not second_factor_passed(login_session):
        return redirect(url_for("admin.totp_verify", next=_here()))
    if request.method == "POST" and request.endpoint in REAUTH_ENDPOINTS and not _recent():
        back = REAUTH_ENDPOINTS[request.endpoint]
        target = url_for(back) if back else request.path
        flash(_("Enter a code again to confirm it is you."), "info")
        return redirect(url_for("admin.totp_verify", next=target))
    return None


def _session_expired(login_session: LoginSession) -> str | None:
    """"idle" or "lifetime" when this admin session must end, else None."""
    now = time.time()
    idle = 60 * float(current_app.config.get("IDP_ADMIN_IDLE_MINUTES", DEFAULT_IDLE_MINUTES))
    seen = session.get(SEEN_KEY)
    if isinstance(seen, int | float) and now - seen > idle:
        return "idle"
    longest = 3600 * float(current_app.config.get("IDP_ADMIN_MAX_HOURS", DEFAULT_MAX_HOURS))
    if (utcnow() - login_session.created_at).total_seconds() > longest:
        return "lifetime"
    return None


def _recent() -> bool:
    mark = session.get(TOTP_PASSED_KEY)
    window = float(current_app.config.get("IDP_REAUTH_SECONDS", 300))
    passed_at = mark.get("at") if isinstance(mark, dict) else None
    return isinstance(passed_at, int | float) and time.time() - passed_at <= window


def second_factor_passed(login_session: LoginSession) -> bool:
    mark = session.get(TOTP_PASSED_KEY)
    if not isinstance(mark, dict) or mark.get("sid") != login_session.id:
        return False
    passed_at = mark.get("at")
    return isinstance(passed_at, int | float) and time.time() - passed_at < PASSED_FOR_SECONDS


def mark_second_factor_passed(login_session: LoginSession) -> None:
    session[TOTP_PASSED_KEY] = {"sid": login_session.id, "at": int(time.time())}


def _here() -> str:
    return request.full_path.rstrip("?") if request.method == "GET" else url_for("admin.dashboard")


def admin_may(action: str) -> bool:
    """For templates: whether the signed-in admin's roles allow `action` (links and buttons)."""
    return may(g.get("admin_roles", ()), action)
