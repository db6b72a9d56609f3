"""`idp admins grant|revoke|list`: admin roles from the command line (the operator's console,
audited as `system:cli`)."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext

from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.models import Account, IdentityKind
from idp.staff.permissions import Role
from idp.staff.roles import RoleRefused, admin_holders, grant_role, revoke_role

ROLE_NAMES = [role.value for role in Role]


@click.group(help="Admin roles: support, identity, security, auditor.")
def admins() -> None:
    pass


@admins.command("grant")
@click.argument("who")
@click.argument("role", type=click.Choice(ROLE_NAMES))
@click.option("--reason", default="", help="kept in the audit trail")
@with_appcontext
def admins_grant(who: str, role: str, reason: str) -> None:
    """WHO is an account id (sub) or a phone number."""
    account = _account(who)
    try:
        granted = grant_role(account, role, Actor.system("cli"), reason)
    except RoleRefused as refusal:
        _fail(str(refusal))
    db.session.commit()
    click.echo(f"{account.id} {role} {'granted' if granted else 'already held'}")


@admins.command("revoke")
@click.argument("who")
@click.argument("role", type=click.Choice(ROLE_NAMES))
@click.option("--reason", default="", help="kept in the audit trail")
@with_appcontext
def admins_revoke(who: str, role: str, reason: str) -> None:
    account = _account(who)
    try:
        revoked = revoke_role(account, role, Actor.system("cli"), reason)
    except RoleRefused as refusal:
        _fail(str(refusal))
    db.session.commit()
    click.echo(f"{account.id} {role} {'revoked' if revoked else 'was not held'}")


@admins.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def admins_list(as_json: bool) -> None:
    holders = admin_holders()
    if as_json:
        click.echo(json.dumps([{"sub": h.account.id, "roles": list(h.roles)} for h in holders]))
        return
    for holder in holders:
        click.echo(f"{holder.account.id}\t{','.join(holder.roles)}")


def _account(who: str) -> Account:
    from idp.identity.phones import InvalidPhoneNumber, normalize_phone
    from idp.identity.service import find_identity

    account = db.session.get(Account, who.strip().lower())
    if account is None:
        try:
            identity = find_identity(IdentityKind.PHONE, normalize_phone(who))
        except InvalidPhoneNumber:
            identity = None
        account = identity.account if identity is not None else None
    if account is None:
        _fail(f"no account with id or phone {who!r}")
    assert account is not None
    return account


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
