"""What an admin does to one account, beyond what the identity engine decides (link, merge,
undo, unlink are the engine's: see `idp.identity.links` and `idp.identity.merge`).

Each action commits its own transaction together with its audit event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from idp.accounts import sms
from idp.accounts.models import LoginSession
from idp.extensions import db, rows_matched
from idp.identity import audit, status
from idp.identity.audit import Actor
from idp.identity.links import unlink_identity
from idp.identity.models import Account, Identity, IdentityKind
from idp.identity.phones import InvalidPhoneNumber, looks_like_phone, normalize_phone
from idp.identity.rules import ProofMethod
from idp.identity.service import IdentityError, link_identity
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
    ended = rows_matched(
        update(LoginSession)
        .where(
            LoginSession.id == session_id,
            LoginSession.account_id == account.id,
            LoginSession.ended_at.is_(None),
        )
        .values(ended_at=utcnow())
    )
    if not ended:
        db.session.rollback()
        raise ActionRefused("no such live session")
    # The session id is a bearer secret: the audit log keeps only its start.
    audit.record("admin.session_end", actor, account.id, session=session_id[:8])
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
        sms.send_code(phone, "reset")
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
                Identity.kind == kind, Identity.value == value, Identity.verified.is_(True)
            )
        ).all()
    return found


def move_identity(identity: Identity, target: Account, actor: Actor) -> Identity:
    """"Link an identity from another account": the engine unlinks it there (refusing when it is
    that account's last way to log in) and links it here as verified by an admin.

    Two engine calls, so two transactions: should the second fail (someone linked the same
    identity elsewhere in between), the identity is linked back to where it was.
    """
    if identity.account_id == target.id:
        raise ActionRefused("the identity already belongs to this account")
    if identity.kind == IdentityKind.PASSWORD:
        raise ActionRefused("a password belongs to its account and cannot be moved")
    if not target.is_active:
        raise ActionRefused("identities are only linked to an active account")
    source_id = identity.account_id
    kind, value, namespace = identity.kind, identity.value, identity.namespace
    proof = identity.verified_by
    unlink_identity(identity, actor)  # raises UnlinkRefused, audited by the engine
    try:
        linked = link_identity(
            target, kind, value, actor, namespace=namespace, verified=True,
            proof=ProofMethod.ADMIN,
        )
        audit.record(
            "admin.identity_move", actor, target.id, reason="moved by an admin",
            kind=kind, namespace=namespace, value=value, moved_from=source_id,
        )
        db.session.commit()
        return linked
    except IdentityError:
        db.session.rollback()
        source = db.session.get(Account, source_id)
        if source is not None:
            link_identity(source, kind, value, actor, namespace=namespace, verified=True,
                          proof=proof)
            db.session.commit()
        raise


def live_sessions(account: Account) -> list[LoginSession]:
    return list(
        db.session.scalars(
            select(LoginSession)
            .where(
                LoginSession.account_id == account.id,
                LoginSession.ended_at.is_(None),
                LoginSession.expires_at > utcnow(),
            )
            .order_by(LoginSession.created_at.desc())
        )
    )


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
