"""Second factors of an account: TOTP (RFC 6238; the mechanics are `idp.accounts.totp`, shared
with the admins' factor) and recovery codes. Passkeys are in
`idp.account_centre.passkeys`. No Flask views here: enrolling, checking and removing. It sits in
`accounts`, below its users — the account centre and the mini-program's second step
(`idp.wechat_login.mfa_exchange`) — so that neither reaches up into the other.

A TOTP secret is encrypted at rest with the IdP's secret box, bound to the factor's account;
during enrolment the candidate waits, encrypted too, in the session cookie. A code is accepted
once (the replay cache keeps the time step it matched), and attempts are throttled per account.
Recovery codes are shown once and kept as SHA-256 digests; each works once.
"""

from __future__ import annotations

import secrets

from markupsafe import Markup
from sqlalchemy import delete, select, update

from idp.accounts import totp
from idp.accounts.models import RecoveryCode, SecondFactor, SecondFactorKind
from idp.crypto import digest
from idp.extensions import db, rows_matched
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.security.throttle import Throttle

ACCOUNT_TOTP = totp.TotpPurpose("account-totp", issuer="IdP", pending_key="account_totp_pending")
RECOVERY_CODE_COUNT = 10
attempts_by_account = Throttle("second-factor", ("5/5 minutes", "20/hour"))


def factors_of(account: Account) -> list[SecondFactor]:
    return list(db.session.scalars(
        select(SecondFactor).where(SecondFactor.account_id == account.id)
        .order_by(SecondFactor.id)
    ))


# --- TOTP --------------------------------------------------------------------------------------


def pending_totp_secret(account: Account) -> str:
    return totp.pending_secret(ACCOUNT_TOTP, account.id)


def provisioning_uri(secret: str, label: str) -> str:
    return totp.provisioning_uri(ACCOUNT_TOTP, secret, label)


def qr_svg(data: str) -> Markup:
    return totp.qr_svg(data)


def _accept_totp(account_id: str, secret: str, code: str) -> bool:
    return totp.accept_once(ACCOUNT_TOTP, account_id, secret, code)


def enrol_totp(account: Account, code: str, label: str) -> SecondFactor | None:
    """The first right code from the app proves the enrolment; None if it is wrong."""
    secret = pending_totp_secret(account)
    if not _accept_totp(account.id, secret, code):
        attempts_by_account.hit(account.id)
        return None
    totp.forget_pending(ACCOUNT_TOTP)
    return add_totp(account, secret, label)


def add_totp(account: Account, secret: str, label: str) -> SecondFactor:
    """Stores a proved TOTP secret, encrypted and bound to its account; the caller commits."""
    factor = SecondFactor(
        account_id=account.id, kind=SecondFactorKind.TOTP, label=label[:80],
        secret_encrypted=totp.seal(ACCOUNT_TOTP, account.id, secret),
        created_at=utcnow(),
    )
    db.session.add(factor)
    audit.record("second_factor.add", Actor.user(account.id), account.id, reason="totp",
                 kind=SecondFactorKind.TOTP)
    return factor


def check_totp(account: Account, code: str) -> SecondFactor | None:
    """The TOTP factor the code matches (each code once), or None. Each attempt takes a slot of
    the throttle before the code is checked (atomically: concurrent guesses cannot all slip in
    under one count); a right code gives the slots back."""
    attempts_by_account.acquire(account.id)
    for factor in factors_of(account):
        if factor.kind != SecondFactorKind.TOTP or not factor.secret_encrypted:
            continue
        secret = totp.unseal(ACCOUNT_TOTP, account.id, factor.secret_encrypted)
        if _accept_totp(account.id, secret, code):
            factor.last_used_at = utcnow()
            attempts_by_account.clear(account.id)
            return factor
    return None


# --- recovery codes ----------------------------------------------------------------------------


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
    two requests racing with the same code cannot both succeed. Throttled as `check_totp`."""
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


def remove_factor(account: Account, factor_id: int) -> bool:
    factor = db.session.get(SecondFactor, factor_id)
    if factor is None or factor.account_id != account.id:
        return False
    db.session.delete(factor)
    db.session.flush()
    if not factors_of(account):
        # No factor left: the recovery codes would be a way round nothing.
        db.session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    audit.record("second_factor.remove", Actor.user(account.id), account.id, reason=factor.kind,
                 kind=factor.kind)
    return True
