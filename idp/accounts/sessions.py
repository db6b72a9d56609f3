"""The IdP session: a signed cookie holding a session id whose truth lives in the database.

Logging in issues a new id (no fixation); logging out or a merge ends the row, so a copied cookie
dies with it.
"""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, timedelta

from flask import current_app, g, has_request_context, request, session
from sqlalchemy import Insert, bindparam, insert, select

from idp.accounts.models import LoginEvent
from idp.extensions import Write, db
from idp.identity.accounts import resolve_account
from idp.identity.audit import Actor
from idp.identity.models import Account, LoginSession
from idp.identity.sign_out import sign_out_session
from idp.models_base import utcnow
from idp.second_factor.factors import has_second_factor

SESSION_KEY = "idp_sid"
# amr values (RFC 8176 §2) that a second factor adds.
SECOND_FACTOR_AMR = frozenset({"otp", "hwk", "swk"})


def start_session(account: Account, amr: list[str], channel: str) -> LoginSession:
    """A new session for this browser. When the account has a second factor that `amr` does not
    include yet, the session waits for it (`second_factor_pending`) and signs nobody in."""
    now = utcnow()
    ttl = int(current_app.config["IDP_SESSION_TTL"])
    row = LoginSession(
        id=secrets.token_urlsafe(32),
        account_id=account.id,
        auth_time=now,
        amr=" ".join(amr),
        channel=channel,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
        user_agent=request.user_agent.string[:255] if has_request_context() else None,
        ip_address=(request.remote_addr or "")[:64] if has_request_context() else None,
        second_factor_pending=has_second_factor(account) and not SECOND_FACTOR_AMR & set(amr),
    )
    db.session.add(row)
    record_login(account, channel)
    db.session.commit()
    session.clear()  # drop anything set before authentication
    session[SESSION_KEY] = row.id
    session.permanent = True
    g.pop("login_session", None)
    return row


def record_login(account: Account, channel: str, client_id: str | None = None) -> None:
    db.session.add(LoginEvent(account_id=account.id, channel=channel, client_id=client_id))


def login_record(account_id: str, channel: str, client_id: str | None = None) -> Write:
    """`record_login` as a Write, for a caller that sends its writes together
    (`idp.extensions.execute_together`)."""
    values = {"login_account_id": account_id, "login_channel": channel,
              "login_client_id": client_id, "login_created_at": utcnow()}
    return _login_insert(), values


@functools.cache
def _login_insert() -> Insert:
    return insert(LoginEvent.__table__).values(  # type: ignore[arg-type]
        account_id=bindparam("login_account_id"), channel=bindparam("login_channel"),
        client_id=bindparam("login_client_id"), created_at=bindparam("login_created_at"),
    )


_SESSION_WITH_ACCOUNT = (
    select(LoginSession, Account)
    .outerjoin(Account, Account.id == LoginSession.account_id)
    .where(LoginSession.id == bindparam("sid"))
)


def current_session() -> LoginSession | None:
    """The live session of this browser, if any (cached for the request)."""
    if "login_session" in g:
        return g.login_session
    found: LoginSession | None = None
    sid = session.get(SESSION_KEY)
    if isinstance(sid, str):
        # The session with its account in one query; `resolve_account` then finds the account
        # loaded (and reads further only for a merged one).
        loaded = db.session.execute(_SESSION_WITH_ACCOUNT, {"sid": sid}).first()
        row = loaded[0] if loaded is not None else None
        if (
            row is not None
            and row.ended_at is None
            and row.expires_at > utcnow()
            and not row.second_factor_pending
        ):
            account = resolve_account(row.account_id)
            if account is not None and account.id == row.account_id and account.is_active:
                found = row
                # Held for the request: the session's identity map holds objects weakly, and
                # `current_account` would load it again.
                g.login_account = account
    g.login_session = found
    return found


def session_awaiting_second_factor() -> LoginSession | None:
    """This browser's session whose first factor is proved and second is still to come."""
    sid = session.get(SESSION_KEY)
    if not isinstance(sid, str):
        return None
    row = db.session.get(LoginSession, sid)
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    return row if row.second_factor_pending else None


def current_account() -> Account | None:
    row = current_session()
    if row is None:
        return None
    held: Account | None = g.get("login_account")
    if held is not None and held.id == row.account_id:
        return held
    return db.session.get(Account, row.account_id)


def auth_time(row: LoginSession) -> int:
    return int(row.auth_time.replace(tzinfo=row.auth_time.tzinfo or UTC).timestamp())


def end_session(sid: str | None = None) -> None:
    """The user signs out of this browser (or RP-initiated logout): the engine ends the session
    and tells the relying parties; refresh tokens for offline access outlive it."""
    sid = sid or session.get(SESSION_KEY)
    if isinstance(sid, str):
        row = db.session.get(LoginSession, sid)
        account = db.session.get(Account, row.account_id) if row is not None else None
        if account is not None and sign_out_session(
            account, sid, Actor.user(account.id), "signed out", keep_offline_access=True
        ):
            db.session.commit()
    session.clear()
    g.pop("login_session", None)
