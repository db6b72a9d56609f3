"""An account's second factors: listing and removing them, the users' TOTP (RFC 6238; the
mechanics are `totp.py`, shared with the admins' factor), and the one throttle of second-factor
attempts per account, which every factor's check counts against (the website's step, the
mini-program's exchange). Recovery codes are `recovery_codes.py`, passkeys `passkeys.py`.

A TOTP secret is encrypted at rest with the IdP's secret box, bound to the factor's account;
during enrolment the candidate waits, encrypted too, in the session cookie. A code is accepted
once (the replay cache keeps the time step it matched), and attempts are throttled per account.
"""

from __future__ import annotations

import functools

from markupsafe import Markup
from sqlalchemy import ColumnElement, delete, exists, select

from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.second_factor import totp
from idp.second_factor.models import RecoveryCode, SecondFactor, SecondFactorKind
from idp.security.throttle import Throttle

ACCOUNT_TOTP = totp.TotpPurpose("account-totp", issuer="IdP", pending_key="account_totp_pending")
attempts_by_account = Throttle("second-factor", ("5/5 minutes", "20/hour"))


def factors_of(account: Account) -> list[SecondFactor]:
    return list(db.session.scalars(
        select(SecondFactor).where(SecondFactor.account_id == account.id)
        .order_by(SecondFactor.id)
    ))


def has_second_factor(account: Account) -> bool:
    found = db.session.scalar(
        select(SecondFactor.id).where(SecondFactor.account_id == account.id).limit(1)
    )
    return found is not None


@functools.cache
def holds_second_factor() -> ColumnElement[bool]:
    """`has_second_factor` as a column of a query that selects the account's row."""
    return exists().where(SecondFactor.account_id == Account.id)


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
