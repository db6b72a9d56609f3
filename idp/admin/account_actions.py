"""What an admin does to one account, beyond what the identity engine decides (link, move, merge,
undo, unlink, ending sessions are the engine's: see `idp.identity.links`, `idp.identity.merge`
and `idp.identity.sign_out`).

Each action commits its own transaction together with its audit event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from idp.accounts import sms_codes
from idp.extensions import db
from idp.identity import audit, status
from idp.identity.audit import Actor
from idp.identity.models import Account, Identity, IdentityKind
from idp.identity.phones import InvalidPhoneNumber, looks_like_phone, normalize_phone
from idp.identity.sign_out import sign_out_session
from idp.models_base import utcnow
from idp.oidc.grants import revoke_family
from idp.oidc.models import RefreshToken
from idp.sms.errors import SmsError


class ActionRefused(Exception):
    """The action cannot be done; the message says why, for the admin."""


def disable_account(account: Account, actor: Actor) -> None:
    try:
        status.disable_account(account, actor, reason="disabled by an admin")
    except status.StatusRefused as refusal:
        raise ActionRefused(str(refusal)) from refusal


def enable_account(account: Account, actor: Actor) -> None:
    try:
        status.enable_account(account, actor, reason="enabled by an admin")
    except status.StatusRefused as refusal:
        raise ActionRefused(str(refusal)) from refusal


def end_login_session(account: Account, session_id: str, actor: Actor) -> None:
    """The engine ends the session with its refresh tokens and tells the relying parties."""
    if not sign_out_session(account, session_id, actor, reason="ended by an admin"):
        db.session.rollback()
        raise ActionRefused("no such live session")
    db.session.commit()


def revoke_refresh_family(account: Account, family: str, actor: Actor) -> None:
    held = db.session.scalars(
        select(RefreshToken.client_id).where(
            RefreshToken.account_id == account.id, RefreshToken.family == family
        )
    ).first()
    if held is None:
        raise ActionRefused("no such token")
    revoke_family(family)
    audit.record("admin.token_revoke", actor, account.id, client_id=held, family=family[:8])
    db.session.commit()


def send_password_reset(account: Account, phone: str, actor: Actor) -> None:
    verified = [
        identity for identity in account.identities
        if identity.kind == IdentityKind.PHONE and identity.verified and identity.value == phone
    ]
    if not verified:
        raise ActionRefused("a reset code goes only to a verified phone of the account")
    try:
        sms_codes.send_code(phone, "reset")
    except SmsError as error:
        raise ActionRefused(f"the SMS provider did not send it: {error.code}") from None
    audit.record("admin.reset_code_sent", actor, account.id, phone=phone)
    db.session.commit()


def identities_matching(identifier: str) -> list[Identity]:
    """Verified identities of any account that an admin's typed identifier names."""
    text = identifier.strip()
    keys: list[tuple[str, str]] = [
        (IdentityKind.WECHAT_OPENID, text), (IdentityKind.WECHAT_UNIONID, text)
    ]
    if "@" in text:
        keys.append((IdentityKind.EMAIL, text.lower()))
    elif looks_like_phone(text):
        try:
            keys.append((IdentityKind.PHONE, normalize_phone(text)))
        except InvalidPhoneNumber:
            pass
    found: list[Identity] = []
    for kind, value in keys:
        found += db.session.scalars(
            select(Identity).where(
                Identity.value_is(value, kind), Identity.verified.is_(True)
            )
        ).all()
    return found


def live_refresh_tokens(account: Account) -> list[RefreshToken]:
    """The current token of each live family (rotated ancestors are not listed)."""
    now: datetime = utcnow()
    return list(
        db.session.scalars(
            select(RefreshToken)
            .where(
                RefreshToken.account_id == account.id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.rotated_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .order_by(RefreshToken.issued_at.desc())
        )
    )
