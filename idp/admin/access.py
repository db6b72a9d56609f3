"""Who may open an admin page: a live IdP session of an active admin account, with TOTP enrolled
and passed in this same session.

The "TOTP passed" mark lives in the signed session cookie bound to the IdP session id: it dies
with that session (logout, expiry, a merge, disabling) because `current_session()` checks the
row, and a new login clears the cookie (`start_session`). It also expires after
`PASSED_FOR_SECONDS`, so a long-lived session is asked again.
"""

from __future__ import annotations

import time
from typing import Any

from flask import abort, g, redirect, request, session, url_for

from idp.accounts.sessions import current_session
from idp.extensions import db
from idp.identity.models import Account, LoginSession

TOTP_PASSED_KEY = "admin_totp_passed"
PASSED_FOR_SECONDS = 12 * 3600
# Pages an admin reaches before the second factor: enrolment and the code prompt.
BEFORE_SECOND_FACTOR = frozenset({"admin.totp_enrol", "admin.totp_verify"})


def require_admin() -> Any:
    login_session = current_session()
    if login_session is None:
        return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
    account = db.session.get(Account, login_session.account_id)
    if account is None or not account.is_admin:
        abort(403)
    g.admin = account
    g.admin_session = login_session
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
