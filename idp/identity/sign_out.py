"""Signing an account out everywhere: the one engine function for "whatever was signed in as
this account is over" (a password reset, an admin disabling it).

In the caller's transaction: every IdP session ends (and the relying parties with a back-channel
logout URI hear of it, Back-Channel Logout 1.0 §2.5), every refresh-token family is revoked,
unused codes expire, and access tokens issued until now fail validation (`tokens_valid_after`;
see `idp.oidc.tokens.access_token_revoked` for the one-second tie).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from idp.accounts.models import LoginSession
from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.merge import end_credentials
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.oidc.backchannel_logout import queue_logout_tokens
from idp.oidc.models import RefreshToken, RevokedAccessToken


def sign_out_everywhere(account: Account, actor: Actor, reason: str) -> dict[str, int]:
    """Ends every credential of the account; the caller commits. Returns what was ended."""
    now = utcnow()
    account.tokens_valid_after = now
    ended = end_credentials(account, now)
    audit.record("account.signed_out_everywhere", actor, account.id, reason=reason, **ended)
    return ended


def sign_out_session(account: Account, session_id: str, actor: Actor, reason: str) -> bool:
    """Ends one IdP session of the account (the user's "sign out that device"), with the refresh
    tokens and access tokens issued in it; relying parties with a back-channel logout URI are
    told (Back-Channel Logout 1.0 §2.5). False when it is not a live session of this account.
    The caller commits."""
    ended = _end_sessions(account, [session_id])
    if ended:
        audit.record("session.end", actor, account.id, reason=reason, sessions=ended)
    return ended == 1


def sign_out_other_sessions(
    account: Account, keep_session_id: str | None, actor: Actor, reason: str
) -> int:
    """Ends every live IdP session of the account except `keep_session_id` (this browser's),
    as `sign_out_session` does for one. Returns how many ended; the caller commits."""
    live = db.session.scalars(
        select(LoginSession.id).where(
            LoginSession.account_id == account.id,
            LoginSession.ended_at.is_(None),
            LoginSession.id != (keep_session_id or ""),
        )
    ).all()
    ended = _end_sessions(account, live)
    audit.record("session.end_others", actor, account.id, reason=reason, sessions=ended)
    return ended


def revoke_refresh_tokens(tokens: Iterable[RefreshToken], now: datetime) -> int:
    """Revokes these refresh tokens and lists the access tokens issued beside them."""
    ttl = timedelta(seconds=int(current_app.config["IDP_ACCESS_TOKEN_TTL"]))
    count = 0
    for token in tokens:
        if token.revoked_at is None:
            token.revoked_at = now
            count += 1
        if token.access_jti and db.session.get(RevokedAccessToken, token.access_jti) is None:
            db.session.add(
                RevokedAccessToken(
                    jti=token.access_jti, expires_at=token.access_expires_at or now + ttl
                )
            )
    return count


def _end_sessions(account: Account, session_ids: Iterable[str]) -> int:
    now = utcnow()
    ended = 0
    for session_id in session_ids:
        row = db.session.get(LoginSession, session_id)
        if row is None or row.account_id != account.id or row.ended_at is not None:
            continue
        row.ended_at = now
        queue_logout_tokens(row.id, account.id)  # in the same transaction
        revoke_refresh_tokens(
            db.session.scalars(
                select(RefreshToken).where(
                    RefreshToken.session_id == row.id, RefreshToken.revoked_at.is_(None)
                )
            ),
            now,
        )
        ended += 1
    return ended
