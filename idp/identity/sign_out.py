"""Ending sessions and credentials: the one engine module for "whatever was signed in as this
account is over", used by every door (the user's sign-out of a device, the account centre, the
admin UI, the management API, a merge, a deletion, a password reset).

In the caller's transaction: an IdP session ends (and the relying parties with a back-channel
logout URI hear of it, Back-Channel Logout 1.0 §2.5) together with the refresh tokens issued in
it and the access tokens issued beside them; signing out everywhere also revokes every
refresh-token family, expires unused codes, and makes access tokens issued until now fail
validation (`tokens_valid_after`; see `idp.oidc.tokens.access_token_revoked` for the one-second
tie).

An open session is one not ended yet; a live one is open and not expired. Ending acts on every
open session, expired or not: the refresh tokens issued in an expired session may still be alive.

The sessions are the engine's; the tokens, codes and back-channel logout are the protocol's,
reached through the hooks it registers at start-up (`idp.identity.hooks`, `idp.oidc.credentials`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from idp.extensions import db
from idp.identity import audit, hooks
from idp.identity.audit import Actor
from idp.identity.models import Account, LoginSession
from idp.models_base import utcnow


def live_sessions(account: Account) -> list[LoginSession]:
    """The account's sessions that are neither ended nor expired, newest first (one query)."""
    return list(
        db.session.scalars(
            open_sessions(account.id)
            .where(LoginSession.expires_at > utcnow())
            .order_by(LoginSession.created_at.desc())
        )
    )


def open_sessions(account_id: str, since: datetime | None = None) -> Select[Any]:
    """The query of the account's sessions not ended yet (begun `since`, when given)."""
    query = select(LoginSession).where(
        LoginSession.account_id == account_id, LoginSession.ended_at.is_(None)
    )
    return query if since is None else query.where(LoginSession.created_at >= since)


def sign_out_everywhere(account: Account, actor: Actor, reason: str) -> dict[str, int]:
    """Ends every credential of the account; the caller commits. Returns what was ended."""
    now = utcnow()
    account.tokens_valid_after = now
    ended = end_credentials(account, now)
    audit.record("account.signed_out_everywhere", actor, account.id, reason=reason, **ended)
    return ended


def sign_out_session(
    account: Account, session_id: str, actor: Actor, reason: str, *,
    keep_offline_access: bool = False,
) -> bool:
    """Ends one IdP session of the account (a device signed out by its user, an admin or a
    back-end service), with the refresh tokens and access tokens issued in it; relying parties
    with a back-channel logout URI are told (Back-Channel Logout 1.0 §2.5). False when it is not
    an open session of this account. The caller commits.

    `keep_offline_access`: the user signing out of this very browser (RP-initiated logout) ends
    the session only; the refresh tokens granted for `offline_access` outlive it (OIDC Core §11).
    """
    ended = _end_sessions(account, [session_id], utcnow(), revoke_tokens=not keep_offline_access)
    if ended:
        # The session id is a bearer secret: the audit log keeps only its start.
        audit.record("session.end", actor, account.id, reason=reason, sessions=ended,
                     session=session_id[:8])
    return ended == 1


def sign_out_other_sessions(
    account: Account, keep_session_id: str | None, actor: Actor, reason: str
) -> int:
    """Ends every open IdP session of the account except `keep_session_id` (this browser's),
    as `sign_out_session` does for one. Returns how many ended; the caller commits."""
    others = [
        row.id for row in db.session.scalars(open_sessions(account.id))
        if row.id != keep_session_id
    ]
    ended = _end_sessions(account, others, utcnow())
    audit.record("session.end_others", actor, account.id, reason=reason, sessions=ended)
    return ended


def end_credentials(
    account: Account, now: datetime, since: datetime | None = None
) -> dict[str, int]:
    """Ends the account's open IdP sessions (the relying parties are told) and every credential
    the protocol issued it — refresh tokens revoked, unused codes expired (only those created
    `since`, when given). Access tokens die by `tokens_valid_after`, which the caller sets."""
    sessions = 0
    for row in db.session.scalars(open_sessions(account.id, since)).all():
        row.ended_at = now
        hooks.session_ended(account.id, row.id, now, revoke_tokens=False)  # revoked below
        sessions += 1
    return {**hooks.credentials_ended(account.id, now, since), "sessions": sessions}


def _end_sessions(
    account: Account, session_ids: Iterable[str], now: datetime, revoke_tokens: bool = True
) -> int:
    ended = 0
    for session_id in session_ids:
        row = db.session.get(LoginSession, session_id)
        if row is None or row.account_id != account.id or row.ended_at is not None:
            continue
        row.ended_at = now
        hooks.session_ended(account.id, row.id, now, revoke_tokens)  # in the same transaction
        ended += 1
    return ended
