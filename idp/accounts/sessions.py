"""The IdP session: a signed cookie holding a session id whose truth lives in the database.

Logging in issues a new id (no fixation); logging out or a merge ends the row, so a copied cookie
dies with it.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from flask import current_app, g, has_request_context, request, session
from sqlalchemy import Insert, Table, bindparam, insert, select
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from idp import statements_alone
from idp.accounts.models import LoginEvent
from idp.caching import BoundedCache, Versions, uncommitted_changes, versions_for
from idp.extensions import Write, db
from idp.identity.audit import Actor
from idp.identity.models import Account, AccountStatus, LoginSession
from idp.identity.sign_out import sign_out_session
from idp.models_base import loaded_instance, utcnow
from idp.second_factor.factors import has_second_factor

SESSION_KEY = "idp_sid"
# amr values (RFC 8176 §2) that a second factor adds.
SECOND_FACTOR_AMR = frozenset({"otp", "hwk", "swk"})
M = TypeVar("M", Account, LoginSession)


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
    g.pop(LIVE_KEY, None)
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


LIVE_KEY = "idp_live_session"
_SESSIONS = cast(Table, LoginSession.__table__)
_ACCOUNTS = cast(Table, Account.__table__)
# The session with its account, every column of both (so that ORM objects can be made of them
# without reading again: `current_session`), by a statement built once.
_SESSION_WITH_ACCOUNT = (
    select(*(column.label(f"session_{column.key}") for column in _SESSIONS.c),
           *(column.label(f"account_{column.key}") for column in _ACCOUNTS.c))
    .select_from(_SESSIONS.join(_ACCOUNTS, _ACCOUNTS.c.id == _SESSIONS.c.account_id))
    .where(_SESSIONS.c.id == bindparam("sid"))
)


# sha256(session id) -> its row with its account's (`_SESSION_WITH_ACCOUNT`), read by every
# authorization request of a signed-in browser. Valid while the account's version is unchanged
# (`idp.caching`): ending a session, its second factor, a merge, a disabled account write rows
# that bump it, in whichever process. Expiry is checked on every use (`signed_in`).
SESSIONS: BoundedCache[dict[str, Any]] = BoundedCache(max_entries=20_000)
_UNMATCHED: Versions = (-1, -1, -1)  # versions are never negative


@dataclass(frozen=True, slots=True)
class LiveAccount:
    """The account of a live session, as read by `signed_in` (its row's values)."""

    row: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def deletion_due_at(self) -> datetime | None:
        value: datetime | None = self.row["deletion_due_at"]
        return value


@dataclass(frozen=True, slots=True)
class LiveSession:
    """This browser's live session and its account, as read by `signed_in`: plain values, no
    ORM objects (loading them through the ORM was most of a signed-in request's database
    CPU). `current_session` and `current_account` make ORM objects of the same rows."""

    row: dict[str, Any]
    account: LiveAccount

    @property
    def id(self) -> str:  # also the OIDC `sid`
        return str(self.row["id"])

    @property
    def account_id(self) -> str:
        return self.account.id

    @property
    def auth_time(self) -> datetime:
        value: datetime = self.row["auth_time"]
        return value

    @property
    def amr(self) -> str:
        return str(self.row["amr"])


def signed_in() -> LiveSession | None:
    """This browser's live session, if any (`live_session`), read once per request (kept on
    `g`, so a session ended or revoked is seen by the next request)."""
    if LIVE_KEY in g:
        live: LiveSession | None = g.get(LIVE_KEY)
        return live
    sid = session.get(SESSION_KEY)
    found = live_session(sid) if isinstance(sid, str) else None
    setattr(g, LIVE_KEY, found)
    return found


def live_session(sid: str) -> LiveSession | None:
    """The session `sid` names if it is live: one statement at most. Live means not ended, not
    expired, not waiting for its second factor, and its account active (a merged-away,
    disabled or deleted account signs nobody in)."""
    row = _read_session(sid)
    if (
        row is None
        or row["session_ended_at"] is not None
        or row["session_expires_at"] <= utcnow()
        or row["session_second_factor_pending"]
        or row["account_status"] != AccountStatus.ACTIVE
    ):
        return None
    return LiveSession(
        {column.key: row[f"session_{column.key}"] for column in _SESSIONS.c},
        LiveAccount({column.key: row[f"account_{column.key}"] for column in _ACCOUNTS.c}),
    )


def _read_session(sid: str) -> dict[str, Any] | None:
    """The session's row with its account's, from this process's cache while the account's
    version is unchanged (`SESSIONS`), else read: at most one statement."""
    if uncommitted_changes():  # in no version yet: neither served nor kept
        return _select_session(sid)
    key = hashlib.sha256(sid.encode()).digest()  # the session id is a credential: never a key
    known = SESSIONS.peek(key)
    versions = None
    if known is not None:
        versions = _account_versions(known["session_account_id"])
        if versions is not None and (hit := SESSIONS.get(key, versions)) is not None:
            return hit
    row = _select_session(sid)
    if row is None:
        return row
    if versions is None or known is None or (
            known["session_account_id"] != row["session_account_id"]):
        # No versions were read before this row: kept under none that match, only to tell
        # the next request whose versions to read before it reads the row again.
        versions = _UNMATCHED
    SESSIONS.put(key, versions, row)
    return row


def _account_versions(account_id: str) -> Versions | None:
    versions = versions_for(account_id, "")
    return None if versions is None else (versions[0], versions[1], 0)


def _select_session(sid: str) -> dict[str, Any] | None:
    if db.engine.dialect.name == "postgresql":
        # Alone (`idp.statements_alone`): a request that only reads (an authorization) then
        # sends no BEGIN or COMMIT, and needs no ORM session for it.
        return statements_alone.first_alone(_SESSION_WITH_ACCOUNT, {"sid": sid})
    row = db.session.execute(_SESSION_WITH_ACCOUNT, {"sid": sid}).first()
    return dict(row._mapping) if row is not None else None


def current_session() -> LoginSession | None:
    """The live session of this browser, if any (cached for the request), as an ORM object:
    made from `signed_in`'s row, without reading it again."""
    if "login_session" in g:
        return g.login_session
    live = signed_in()
    found: LoginSession | None = None
    if live is not None:
        found = _attached(LoginSession, live.row)
        # Held for the request: the session's identity map holds objects weakly, and
        # `current_account` would load it again.
        g.login_account = _attached(Account, live.account.row)
    g.login_session = found
    return found


def _attached(model: type[M], row: dict[str, Any]) -> M:
    """The ORM object of a row just read: the one this database session holds already, or one
    made of the row and attached as loaded (no statement; a change to it is flushed as an
    UPDATE, as for a queried object)."""
    held = db.session.identity_map.get(identity_key(model, row["id"]))
    if held is not None:
        return held
    made = loaded_instance(model, row)
    make_transient_to_detached(made)
    db.session.add(made)
    return made


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


def auth_time(row: LoginSession | LiveSession) -> int:
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
    g.pop(LIVE_KEY, None)
