"""The admins' second factor: TOTP enrolled by a QR code, its secret kept on the account row
(`Account.totp_secret_encrypted`). The mechanics — sealing, the pending secret, the QR code,
accepting a code once — are `totp.py`'s; attempts are throttled per account.
"""

from __future__ import annotations

from markupsafe import Markup

from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.second_factor import totp
from idp.security.throttle import Throttle

ADMIN_TOTP = totp.TotpPurpose("admin-totp", issuer="IdP admin", pending_key="admin_totp_pending")
attempts_by_account = Throttle("admin-totp", ("5/5 minutes", "20/hour"))


def pending_secret(account: Account) -> str:
    """The candidate secret of an enrolment in progress, created on first use."""
    return totp.pending_secret(ADMIN_TOTP, account.id)


def provisioning_uri(account: Account, secret: str, label: str) -> str:
    return totp.provisioning_uri(ADMIN_TOTP, secret, label)


def qr_svg(data: str) -> Markup:
    return totp.qr_svg(data)


def accept_code(account: Account, secret: str, code: str) -> bool:
    """True for a right code not used before; each try counts against the throttle."""
    if not totp.accept_once(ADMIN_TOTP, account.id, secret, code):
        attempts_by_account.hit(account.id)
        return False
    db.session.commit()  # the used step must be remembered even if nothing else is written
    attempts_by_account.clear(account.id)
    return True


def finish_enrolment(account: Account, secret: str) -> None:
    account.totp_secret_encrypted = totp.seal(ADMIN_TOTP, account.id, secret)
    totp.forget_pending(ADMIN_TOTP)
    audit.record("admin.totp_enrol", Actor.admin(account.id), account.id, reason="second factor")
    db.session.commit()


def enrolled_secret(account: Account) -> str | None:
    if not account.totp_secret_encrypted:
        return None
    return totp.unseal(ADMIN_TOTP, account.id, account.totp_secret_encrypted)
