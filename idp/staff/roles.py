"""Granting, revoking and listing admin roles, with the separation of duties the operator chose.

`IDP_ADMIN_SEPARATION`:
- `relaxed` (the default): one person may hold several roles. A fresh install has one operator
  (the bootstrap admin, `security`), and a small team would otherwise be locked out of merges
  until three people are enrolled; every grant is audited either way.
- `strict`: `security` and `auditor` are each held alone (三权分立 as 等保 2.0 level 3 asks): a
  grant that would give an account `security` or `auditor` beside any other role is refused.

`Account.is_admin` stays the switch the rest of the code knows (erasure clears it): it is on
exactly while the account holds a role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.staff.models import AdminRoleGrant
from idp.staff.permissions import AUDITOR, SECURITY, Role

RELAXED = "relaxed"
STRICT = "strict"
SEPARATION_MODES = (RELAXED, STRICT)
ALONE_IN_STRICT = frozenset({SECURITY, AUDITOR})


class RoleRefused(Exception):
    """A grant or revocation the policy does not allow; `code` names the rule."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AdminHolder:
    account: Account
    roles: tuple[str, ...]


def separation_mode() -> str:
    mode = str(current_app.config.get("IDP_ADMIN_SEPARATION") or RELAXED).lower()
    return mode if mode in SEPARATION_MODES else STRICT  # an unreadable setting: the safe one


def roles_of(account_id: str) -> frozenset[str]:
    return frozenset(db.session.scalars(
        select(AdminRoleGrant.role).where(AdminRoleGrant.account_id == account_id)
    ))


def parse_role(name: str) -> Role:
    try:
        return Role(name.strip().lower())
    except ValueError:
        raise RoleRefused("unknown_role", f"unknown role {name!r}: one of "
                          + ", ".join(r.value for r in Role)) from None


def check_separation(roles: Iterable[str]) -> None:
    """Raises RoleRefused when `roles` held together break the strict separation."""
    held = frozenset(roles)
    if separation_mode() != STRICT or len(held) < 2:
        return
    alone = sorted(held & ALONE_IN_STRICT)
    if alone:
        raise RoleRefused(
            "separation_of_duties",
            f"IDP_ADMIN_SEPARATION=strict: {alone[0]} is held alone, not with "
            + ", ".join(sorted(held - {alone[0]})),
        )


def grant_role(account: Account, role: Role | str, actor: Actor, reason: str = "") -> bool:
    """Gives `account` the role (False when it already held it); audited in the same
    transaction, which the caller commits."""
    role = parse_role(str(role))
    if account.merged_into_id is not None:
        raise RoleRefused("account_unavailable", "a merged account cannot hold a role")
    held = roles_of(account.id)
    if role in held:
        return False
    check_separation(held | {role})
    db.session.add(AdminRoleGrant(account_id=account.id, role=role.value,
                                  granted_by=str(actor), granted_at=utcnow()))
    account.is_admin = True
    audit.record("admin.role_grant", actor, account.id, reason=reason or None, role=role.value)
    return True


def revoke_role(account: Account, role: Role | str, actor: Actor, reason: str = "") -> bool:
    """Takes the role away (False when it was not held); the last `security` holder keeps it,
    or nobody could grant roles again."""
    role = parse_role(str(role))
    grant = db.session.get(AdminRoleGrant, (account.id, role.value))
    if grant is None:
        return False
    if role == SECURITY and _security_holders() <= 1:
        raise RoleRefused("last_security_admin",
                          "the last security admin keeps the role: grant it to someone first")
    db.session.delete(grant)
    db.session.flush()
    if not roles_of(account.id):
        account.is_admin = False
    audit.record("admin.role_revoke", actor, account.id, reason=reason or None, role=role.value)
    return True


def admin_holders() -> list[AdminHolder]:
    rows = db.session.execute(
        select(AdminRoleGrant.account_id, AdminRoleGrant.role).order_by(AdminRoleGrant.account_id)
    ).all()
    by_account: dict[str, list[str]] = {}
    for account_id, role in rows:
        by_account.setdefault(account_id, []).append(role)
    holders = []
    for account_id, roles in by_account.items():
        account = db.session.get(Account, account_id)
        if account is not None:
            order = [r.value for r in Role]
            holders.append(AdminHolder(account, tuple(sorted(roles, key=order.index))))
    return holders


def _security_holders() -> int:
    return len(db.session.scalars(
        select(AdminRoleGrant.account_id).where(AdminRoleGrant.role == SECURITY.value)
    ).all())
