"""Who may open an admin page: a live IdP session of an active admin account, with TOTP enrolled
and passed in this same session, holding a role that may carry out the page's action.

Every admin endpoint names its action in `ROUTE_ACTIONS` (the role × action table is
`idp.staff.permissions.ACTIONS`); an endpoint missing from it is refused to everybody, so a new
page is closed until someone decides who may use it.

The "TOTP passed" mark lives in the signed session cookie bound to the IdP session id: it dies
with that session (logout, expiry, a merge, disabling) because `current_session()` checks the
row, and a new login clears the cookie (`start_session`). It also expires after
`PASSED_FOR_SECONDS`, so a long-lived session is asked again.
"""

from __future__ import annotations

import time
from typing import Any

from flask import abort, g, redirect, request, session, url_for

from idp.accounts.models import LoginSession
from idp.accounts.sessions import current_session
from idp.extensions import db
from idp.identity.models import Account
from idp.staff.permissions import may
from idp.staff.roles import roles_of

TOTP_PASSED_KEY = "admin_totp_passed"
PASSED_FOR_SECONDS = 12 * 3600
# Pages an admin reaches before the second factor: enrolment and the code prompt.
BEFORE_SECOND_FACTOR = frozenset({"admin.totp_enrol", "admin.totp_verify"})

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
    if not may(roles, ROUTE_ACTIONS.get(request.endpoint or "", "")):
        abort(403)
    if request.endpoint in BEFORE_SECOND_FACTOR:
        return None
    if not account.totp_secret_encrypted:
        return redirect(url_for("admin.totp_enrol", next=_here()))
    if not second_factor_passed(login_session):
        return redirect(url_for("admin.totp_verify", next=_here()))
    return None


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
