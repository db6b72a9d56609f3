"""`idp admins grant|revoke|list`: admin roles from the command line (the operator's console,
audited as `system:cli`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click
from flask.cli import with_appcontext

from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.models import Account, IdentityKind
from idp.staff.permissions import Role
from idp.staff.roles import RoleRefused, admin_holders, grant_role, revoke_role

ROLE_NAMES = [role.value for role in Role]
RoleChange = Callable[[Account, str, Actor, str], bool]  # grant_role, revoke_role


@click.group(help="Admin roles: support, identity, security, auditor.")
def admins() -> None:
    pass


def _role_command(name: str, change: RoleChange, changed: str, unchanged: str) -> None:
    """`idp admins grant|revoke WHO ROLE`: the same command but for the change it makes."""

    @admins.command(name, help="WHO is an account id (sub) or a phone number.")
    @click.argument("who")
    @click.argument("role", type=click.Choice(ROLE_NAMES))
    @click.option("--reason", default="", help="kept in the audit trail")
    @with_appcontext
    def command(who: str, role: str, reason: str) -> None:
        account = _account(who)
        try:
            done = change(account, role, Actor.system("cli"), reason)
        except RoleRefused as refusal:
            _fail(str(refusal))
        db.session.commit()
        click.echo(f"{account.id} {role} {changed if done else unchanged}")


_role_command("grant", grant_role, "granted", "already held")
_role_command("revoke", revoke_role, "revoked", "was not held")


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
    from idp.identity.accounts import find_identity
    from idp.identity.phones import InvalidPhoneNumber, normalize_phone

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


@click.group(help="The tamper-evident audit trail.")
def audit() -> None:
    pass


@audit.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Walks every day's MAC chain; exit 1 naming each altered, deleted or reordered record."""
    from idp.staff.audit_chain import verify

    result = verify(db.session)
    for problem in result.problems:
        click.echo(f"error: {problem}", err=True)
    if result.problems:
        sys.exit(1)
    click.echo(f"ok: {result.records} records, {result.days} days"
               + (f", {result.unsealed_before_chain} from before the chain"
                  if result.unsealed_before_chain else "")
               + (f", {result.purged} purged by retention" if result.purged else ""))


@audit.command("export")
@click.option("--output", type=click.Path(dir_okay=False), help="a file (RFC 5424 lines)")
@click.option("--syslog", "syslog_to", help="HOST:PORT of a syslog receiver (UDP, RFC 5424)")
@click.option("--since", help="YYYY-MM-DD (UTC)")
@with_appcontext
def audit_export(output: str | None, syslog_to: str | None, since: str | None) -> None:
    import socket
    from datetime import UTC, datetime

    from idp.staff.audit_chain import rfc5424_lines

    start = None
    if since:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=UTC)
        except ValueError:
            _fail(f"--since wants YYYY-MM-DD, not {since!r}")
    lines = rfc5424_lines(db.session, socket.gethostname() or "-", start)
    count = 0
    if syslog_to:
        host, _, port = syslog_to.rpartition(":")
        if not host or not port.isdigit():
            _fail("--syslog wants HOST:PORT")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for line in lines:
                sender.sendto(line.encode(), (host, int(port)))
                count += 1
    else:
        handle = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        try:
            for line in lines:
                handle.write(line + "\n")
                count += 1
        finally:
            if output:
                handle.close()
    if output or syslog_to:
        click.echo(f"exported {count} records")
