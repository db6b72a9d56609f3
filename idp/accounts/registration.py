"""Accounts made or entered by a proven phone: one-step SMS-code sign-in (which creates the
account of a new phone), registration with a password, password reset by SMS code."""

from __future__ import annotations

import secrets

from flask import current_app

from idp.accounts import passwords
from idp.accounts.models import TermsAcceptance
from idp.extensions import db
from idp.identity import audit
from idp.identity.accounts import (
    create_account,
    find_account,
    identities_of,
    link_identity,
    set_claim,
)
from idp.identity.audit import Actor
from idp.identity.models import Account, IdentityKind
from idp.identity.sign_out import sign_out_everywhere
from idp.models_base import utcnow


class RegistrationRefused(Exception):
    pass


def register_with_phone(
    phone: str, password: str, name: str | None = None, channel: str = "website_password"
) -> Account:
    """The caller has checked the SMS code: the phone is verified by it. The user accepted the
    terms on the page that asked for the code."""
    if find_account(IdentityKind.PHONE, phone) is not None:
        raise RegistrationRefused("phone already registered")
    password_hash = passwords.hash_password(password)
    account = create_account(Actor.system("registration"), "website")
    actor = Actor.user(account.id)
    link_identity(account, IdentityKind.PHONE, phone, actor, verified=True, proof="sms")
    add_password(account, password_hash, actor)
    if name:
        set_claim(account, "name", name, "user")
    record_terms_acceptance(account, channel)
    db.session.commit()
    return account


def sign_in_with_proven_phone(phone: str) -> tuple[Account, bool]:
    """The caller has checked an SMS code for `phone` (and the user accepted the terms).
    The account holding the phone verified — whichever way it was proven, e.g. by WeChat's
    getPhoneNumber in the mini-program — signs in; a new phone gets an account, with no
    password. Returns (account, created)."""
    account = find_account(IdentityKind.PHONE, phone)
    if account is not None:
        if not account.is_active:
            raise RegistrationRefused("account disabled")
        record_terms_acceptance(account, "website_sms")
        db.session.commit()
        return account, False
    account = create_account(Actor.system("sms-login"), "website")
    link_identity(
        account, IdentityKind.PHONE, phone, Actor.user(account.id), verified=True, proof="sms"
    )
    record_terms_acceptance(account, "website_sms")
    db.session.commit()
    return account, True


def record_terms_acceptance(account: Account, channel: str) -> None:
    """Once per account and version of the terms (`IDP_TERMS_VERSION`)."""
    version = str(current_app.config["IDP_TERMS_VERSION"])
    already = db.session.query(TermsAcceptance.id).filter_by(
        account_id=account.id, version=version
    ).first()
    if already is None:
        db.session.add(TermsAcceptance(
            account_id=account.id, version=version, accepted_at=utcnow(), channel=channel
        ))


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
