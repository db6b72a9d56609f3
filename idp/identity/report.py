"""The reconciliation report: what the rules did not merge, for an admin to review.

- accounts sharing a phone that is unverified on at least one of them (typed in, not proved);
- accounts sharing an email that one of them verified (a verified email only suggests);
- active accounts with no way left to log in (`rules.ways_to_log_in`).
Nothing here changes anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select

from idp.extensions import db
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind
from idp.identity.rules import ways_to_log_in


@dataclass
class SharedIdentity:
    kind: str
    value: str
    account_ids: list[str]
    verified_on: list[str]  # the account (at most one) that holds it verified


@dataclass
class IdentityReport:
    shared_unverified_phones: list[SharedIdentity] = field(default_factory=list)
    shared_verified_emails: list[SharedIdentity] = field(default_factory=list)
    no_way_to_log_in: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_empty(self) -> bool:
        return not (
            self.shared_unverified_phones or self.shared_verified_emails or self.no_way_to_log_in
        )


def build_report() -> IdentityReport:
    return IdentityReport(
        shared_unverified_phones=shared_identities(IdentityKind.PHONE),
        shared_verified_emails=[
            shared for shared in shared_identities(IdentityKind.EMAIL) if shared.verified_on
        ],
        no_way_to_log_in=accounts_without_login(),
    )


def shared_identities(kind: str) -> list[SharedIdentity]:
    """Values of `kind` held by two or more active accounts. Since a verified identity belongs
    to one account only, every such group is unverified on all accounts but at most one."""
    active = Account.status == AccountStatus.ACTIVE
    values = (
        select(Identity.value)
        .join(Account, Account.id == Identity.account_id)
        .where(Identity.kind == kind, active)
        .group_by(Identity.value)
        .having(func.count(func.distinct(Identity.account_id)) > 1)
    )
    rows = db.session.execute(
        select(Identity.value, Identity.account_id, Identity.verified)
        .join(Account, Account.id == Identity.account_id)
        .where(Identity.kind == kind, active, Identity.value.in_(values))
        .order_by(Identity.value, Account.created_at, Identity.account_id)
    ).all()
    groups: dict[str, SharedIdentity] = {}
    for value, account_id, verified in rows:
        group = groups.setdefault(value, SharedIdentity(kind, value, [], []))
        if account_id not in group.account_ids:
            group.account_ids.append(account_id)
        if verified and account_id not in group.verified_on:
            group.verified_on.append(account_id)
    return list(groups.values())


def accounts_without_login() -> list[str]:
    account_ids = db.session.scalars(
        select(Account.id)
        .where(Account.status == AccountStatus.ACTIVE)
        .order_by(Account.created_at, Account.id)
    ).all()
    by_account: dict[str, list[Identity]] = {account_id: [] for account_id in account_ids}
    for identity in db.session.scalars(
        select(Identity)
        .join(Account, Account.id == Identity.account_id)
        .where(Account.status == AccountStatus.ACTIVE)
    ):
        by_account[identity.account_id].append(identity)
    return [account_id for account_id, held in by_account.items() if not ways_to_log_in(held)]


def format_table(report: IdentityReport) -> str:
    """The report for a terminal, one section per finding."""
    lines = ["Accounts sharing an unverified phone (suggested merges):"]
    lines += _group_lines(report.shared_unverified_phones)
    lines.append("Accounts sharing a verified email (suggested merges):")
    lines += _group_lines(report.shared_verified_emails)
    lines.append("Accounts with no way left to log in:")
    lines += [f"  {account_id}" for account_id in report.no_way_to_log_in] or ["  (none)"]
    return "\n".join(lines)


def _group_lines(groups: list[SharedIdentity]) -> list[str]:
    if not groups:
        return ["  (none)"]
    lines = []
    for group in groups:
        lines.append(f"  {group.value}")
        for account_id in group.account_ids:
            mark = "verified" if account_id in group.verified_on else "unverified"
            lines.append(f"    {account_id}  {mark}")
    return lines
