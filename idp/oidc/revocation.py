"""Revoking every token at once, after a restore (docs/DEPLOYMENT.md, "After a restore").

A restored database has forgotten what was revoked after its dump: refresh tokens revoked or
rotated since then work again, and access tokens (self-contained JWTs) were never stored. So:
every refresh token issued before the cut-off is revoked, and a cut-off row makes the validator
reject every access token issued at or before it (`tokens.access_token_revoked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from idp.extensions import db
from idp.models_base import utcnow
from idp.oidc.models import RefreshToken, TokenCutoff


@dataclass(frozen=True)
class RevokedAll:
    not_before: datetime
    refresh_tokens: int


def revoke_all_tokens(actor: str, before: datetime | None = None) -> RevokedAll:
    """Revokes refresh tokens issued before `before` (default: now) and rejects access tokens
    issued at or before it; one transaction. Tokens issued later are untouched."""
    now = utcnow()
    not_before = min(before or now, now)
    revoked = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.issued_at <= not_before, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.add(TokenCutoff(not_before=not_before, actor=actor[:80], created_at=now))
    db.session.commit()
    return RevokedAll(not_before, int(getattr(revoked, "rowcount", 0) or 0))

