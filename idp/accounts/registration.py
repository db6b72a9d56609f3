"""Registration by phone + SMS code + password, and password reset by SMS code."""

from __future__ import annotations

import secrets

from idp.accounts import passwords
from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account, IdentityKind
from idp.identity.service import (
    create_account,
    find_account,
    identities_of,
    link_identity,
    set_claim,
)
from idp.identity.sign_out import sign_out_everywhere


class RegistrationRefused(Exception):
    pass


def register_with_phone(phone: str, password: str, name: str | None = None) -> Account:
    """The caller has checked the SMS code: the phone is verified by it."""
    if find_account(IdentityKind.PHONE, phone) is not None:
        raise RegistrationRefused("phone already registered")
    password_hash = passwords.hash_password(password)
    account = create_account(Actor.system("registration"), "website")
    actor = Actor.user(account.id)
    link_identity(account, IdentityKind.PHONE, phone, actor, verified=True, proof="sms")
    add_password(account, password_hash, actor)
    if name:
        set_claim(account, "name", name, "user")
    db.session.commit()
    return account


def add_password(account: Account, password_hash: str, actor: Actor) -> None:
    link_identity(
        account,
        IdentityKind.PASSWORD,
        secrets.token_urlsafe(16),
        actor,
        verified=True,
        proof="password",
        secret_hash=password_hash,
    )


def reset_password(account: Account, password: str) -> None:
    """Replaces every password credential of the account with the new one, and signs the
    account out everywhere in the same transaction: whoever knew the old password (the reason
    for most resets) keeps no session, refresh token or access token."""
    password_hash = passwords.hash_password(password)
    actor = Actor.user(account.id)
    credentials = identities_of(account, IdentityKind.PASSWORD)
    if credentials:
        for credential in credentials[1:]:
            db.session.delete(credential)
        credentials[0].secret_hash = password_hash
        audit.record("password.reset", actor, account.id, reason="sms")
    else:
        add_password(account, password_hash, actor)
    sign_out_everywhere(account, actor, reason="password reset")
    db.session.commit()
