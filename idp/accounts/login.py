"""Password login: find the account by phone or email, check the password, no enumeration."""

from __future__ import annotations

from idp.accounts import passwords
from idp.extensions import db
from idp.identity.accounts import find_account, identities_of, touch_identity
from idp.identity.models import Account, IdentityKind
from idp.identity.phones import InvalidPhoneNumber, looks_like_phone, normalize_phone
from idp.security import throttle


def identifier_to_identity(identifier: str) -> tuple[str, str] | None:
    text = (identifier or "").strip()
    if "@" in text:
        return IdentityKind.EMAIL, text.lower()
    if looks_like_phone(text):
        try:
            return IdentityKind.PHONE, normalize_phone(text)
        except InvalidPhoneNumber:
            return None
    return None


def authenticate(identifier: str, password: str) -> Account | None:
    """The account when the password is right; None otherwise, taking the same time whether
    or not the identifier exists."""
    found = identifier_to_identity(identifier)
    account = find_account(*found) if found else None
    credentials = identities_of(account, IdentityKind.PASSWORD) if account else []
    if not credentials:
        passwords.burn_equivalent_time(password)
        return None
    for credential in credentials:
        if credential.secret_hash and passwords.verify_password(credential.secret_hash, password):
            if passwords.needs_rehash(credential.secret_hash):
                credential.secret_hash = passwords.hash_password(password)
            touch_identity(credential)
            db.session.commit()
            return account if account is not None and account.is_active else None
    return None


def authenticate_throttled(identifier: str, password: str) -> Account | None:
    """`authenticate` behind the password throttles (per address and per account): raises
    `Throttled` when locked out, counts failures, and clears the account's count on success.
    Every password check of the IdP goes through here."""
    account_key = throttle_key(identifier)
    address = throttle.client_address()
    throttle.password_by_address.check(address)
    throttle.password_by_account.check(account_key)
    account = authenticate(identifier, password)
    if account is None:
        throttle.password_by_address.hit(address)
        throttle.password_by_account.hit(account_key)
    else:
        throttle.password_by_account.clear(account_key)
    return account


def throttle_key(identifier: str) -> str:
    """The same key for every spelling of one phone or email; unknown ones count alike."""
    found = identifier_to_identity(identifier)
    return ":".join(found) if found else identifier.strip().lower()[:254]
