"""Signing out everywhere but this browser, offered when a second factor is added.

Adding a factor changes how the account signs in from then on; what was signed in before keeps
working without it (no `mfa` in its amr) until it ends. When the user accepts the offer, every
other IdP session ends through the usual path (`sign_out_other_sessions`: its refresh and access
tokens die with it, relying parties with a back-channel logout URI are told), and so do the
refresh tokens that belong to no live session of this browser: the mini-program's (a token
exchange has no IdP session) and those an app kept after its session ended (`offline_access`).
This browser's session and the tokens issued in it stay: the user has just proved the factor.

Protocol code (it revokes refresh tokens, the protocol's table): the sessions end through the
engine (`idp.identity.sign_out`), which sits below.
"""

from __future__ import annotations

from sqlalchemy import or_, select

from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.identity.sign_out import live_sessions, sign_out_other_sessions
from idp.models_base import utcnow
from idp.oidc.credentials import revoke_refresh_tokens
from idp.oidc.models import RefreshToken

REASON = "second factor added"


def sign_out_elsewhere(account: Account, keep_session_id: str, actor: Actor) -> dict[str, int]:
    """Ends what is signed in as the account outside the session `keep_session_id`; the caller
    commits. Returns how many sessions and further refresh tokens ended."""
    sessions = sign_out_other_sessions(account, keep_session_id, actor, REASON)
    outside = db.session.scalars(
        select(RefreshToken).where(
            RefreshToken.account_id == account.id,
            RefreshToken.revoked_at.is_(None),
            or_(RefreshToken.session_id.is_(None), RefreshToken.session_id != keep_session_id),
        )
    )
    tokens = revoke_refresh_tokens(outside, utcnow())
    audit.record("refresh_token.revoke_others", actor, account.id, reason=REASON,
                 refresh_tokens=tokens)
    return {"sessions": sessions, "refresh_tokens": tokens}


def signed_in_elsewhere(account: Account, keep_session_id: str) -> bool:
    """Whether `sign_out_elsewhere` would end anything: the offer is made only then. Two
    queries: the live sessions, then a refresh token outside this one (stopping at the first)."""
    now = utcnow()
    if any(row.id != keep_session_id for row in live_sessions(account)):
        return True
    other_token = db.session.scalar(
        select(RefreshToken.token_digest).where(
            RefreshToken.account_id == account.id,
            RefreshToken.revoked_at.is_(None),
            RefreshToken.rotated_at.is_(None),
            RefreshToken.expires_at > now,
            or_(RefreshToken.session_id.is_(None), RefreshToken.session_id != keep_session_id),
        ).limit(1)
    )
    return other_token is not None
