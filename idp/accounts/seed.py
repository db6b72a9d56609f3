"""Creating password users outside the sign-up flow (command line, demo, admin)."""

from __future__ import annotations

from idp.accounts import passwords
from idp.accounts.registration import add_password
from idp.extensions import db
from idp.identity.accounts import (
    IdentityTaken,
    create_account,
    find_identity,
    link_identity,
    set_claim,
)
from idp.identity.audit import Actor
from idp.identity.models import Account, IdentityKind
from idp.identity.phones import normalize_phone
from idp.staff.permissions import SECURITY
from idp.staff.roles import grant_role


def create_password_user(
    phone: str,
    password: str,
    *,
    email: str | None = None,
    name: str | None = None,
    admin: bool = False,
    actor: Actor | None = None,
) -> Account:
    """A password user whose phone counts as verified (the operator vouches for it)."""
    e164 = normalize_phone(phone)
    existing = find_identity(IdentityKind.PHONE, e164)
    if existing is not None:
        raise IdentityTaken(existing)
    password_hash = passwords.hash_password(password)
    actor = actor or Actor.system("cli")
    account = create_account(actor, "admin", is_admin=admin)
    link_identity(account, IdentityKind.PHONE, e164, actor, verified=True, proof="operator")
    if email:
        link_identity(account, IdentityKind.EMAIL, email.strip().lower(), actor, verified=False)
    add_password(account, password_hash, actor)
    if name:
        set_claim(account, "name", name, "website", actor)
    if admin:
        # The bootstrap admin (issue 27) holds `security`, the role that grants the others.
        grant_role(account, SECURITY, actor, reason="bootstrap admin")
    db.session.commit()
    return account
