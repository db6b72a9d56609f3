"""Recovery codes: one-time codes for a lost second factor. Shown once and kept as SHA-256
digests; each works once, and every try counts against the account's second-factor throttle
(`factors.attempts_by_account`)."""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select, update

from idp.crypto import digest
from idp.extensions import db, rows_matched
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.second_factor.factors import attempts_by_account
from idp.second_factor.models import RecoveryCode

RECOVERY_CODE_COUNT = 10


def _code_digest(account_id: str, code: str) -> str:
    return digest(f"recovery:{account_id}:{code.replace('-', '').strip().lower()}")


def new_recovery_codes(account: Account) -> list[str]:
    """Replaces the account's recovery codes; the plain codes are returned once, to show."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)  # 40 bits, throttled like a TOTP code
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(account_id=account.id,
                                    code_digest=_code_digest(account.id, raw),
                                    created_at=utcnow()))
    audit.record("recovery_codes.create", Actor.user(account.id), account.id,
                 reason="second factor", count=RECOVERY_CODE_COUNT)
    return codes


def use_recovery_code(account: Account, code: str) -> bool:
    """Spends the code if it is one of the account's unused ones: one conditional UPDATE, so
    two requests racing with the same code cannot both succeed. Throttled as
    `factors.check_totp`."""
    attempts_by_account.acquire(account.id)
    wanted = _code_digest(account.id, code)
    spent = rows_matched(
        update(RecoveryCode)
        .where(RecoveryCode.account_id == account.id,
               RecoveryCode.code_digest == wanted,
               RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if spent != 1:
        return False
    audit.record("recovery_code.use", Actor.user(account.id), account.id, reason="second factor")
    attempts_by_account.clear(account.id)
    return True


def remaining_recovery_codes(account: Account) -> int:
    return len(db.session.scalars(
        select(RecoveryCode.id).where(RecoveryCode.account_id == account.id,
                                      RecoveryCode.used_at.is_(None))
    ).all())
