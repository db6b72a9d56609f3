"""The reconciliation report: what the rules did not merge, for an admin to review.

Phones and emails are grouped by their lookup key (the blind index, `identity.lookup_key`): the
stored findings hold that key, never the value, which is looked up again for display.

- accounts sharing a phone that is unverified on at least one of them (typed in, not proved);
- accounts sharing an email that one of them verified (a verified email only suggests);
- active accounts with no way left to log in (`rules.lacks_way_to_log_in`);
- WeChat accounts with a unionid on one side only: an active account that holds a WeChat openid
  but no unionid while other accounts do hold unionids, so the same person on the other side
  (website or mini-program) can never be joined to it by the unionid rule (value: the appid);
- event deliveries dead for more than a day (every retry failed; value: the delivery id).

Computed in SQL and streamed: memory stays bounded however many accounts there are (no Python
object per identity). `run_reconciliation` stores a run and its findings (`idp worker` daily,
`idp identity report`, the admin's "run now"); the admin pages read the stored findings a page
at a time. Nothing here changes an account.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from itertools import groupby, islice
from typing import IO, Any

from sqlalchemy import Integer, case, exists, func, insert, select, text
from sqlalchemy.orm import Session, aliased

from idp.events.models import DeliveryStatus, EventDelivery
from idp.extensions import db
from idp.identity.lookup import value_behind, values_behind
from idp.identity.models import (
    Account,
    AccountStatus,
    Identity,
    IdentityKind,
    ReconciliationFinding,
    ReconciliationRun,
)
from idp.identity.rules import lacks_way_to_log_in
from idp.models_base import utcnow

SHARED_UNVERIFIED_PHONE = "shared_unverified_phone"
SHARED_VERIFIED_EMAIL = "shared_verified_email"
NO_WAY_TO_LOG_IN = "no_way_to_log_in"
UNIONID_ONE_SIDE = "unionid_one_side"
DEAD_DELIVERY = "dead_delivery"
REASONS = (SHARED_UNVERIFIED_PHONE, SHARED_VERIFIED_EMAIL, NO_WAY_TO_LOG_IN, UNIONID_ONE_SIDE,
           DEAD_DELIVERY)
DEAD_FOR = timedelta(days=1)
STREAM_ROWS = 2000


@dataclass
class Finding:
    reason: str
    value: str | None
    account_ids: list[str]
    verified_on: list[str] = field(default_factory=list)  # at most one account: the verified one


@dataclass
class SharedIdentity:
    kind: str
    value: str
    account_ids: list[str]
    verified_on: list[str]


@dataclass
class IdentityReport:
    """The whole report in memory: for tests and small deployments; see `findings()`."""

    shared_unverified_phones: list[SharedIdentity] = field(default_factory=list)
    shared_verified_emails: list[SharedIdentity] = field(default_factory=list)
    no_way_to_log_in: list[str] = field(default_factory=list)
    unionid_one_side: list[str] = field(default_factory=list)
    dead_deliveries: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_empty(self) -> bool:
        return not (
            self.shared_unverified_phones or self.shared_verified_emails or self.no_way_to_log_in
            or self.unionid_one_side or self.dead_deliveries
        )


def build_report() -> IdentityReport:
    report = IdentityReport()
    for finding in findings():
        if finding.reason == NO_WAY_TO_LOG_IN:
            report.no_way_to_log_in.append(finding.account_ids[0])
            continue
        if finding.reason == UNIONID_ONE_SIDE:
            report.unionid_one_side.append(finding.account_ids[0])
            continue
        if finding.reason == DEAD_DELIVERY:
            report.dead_deliveries.append(int(finding.value or 0))
            continue
        kind = _kind(finding.reason)
        value = value_behind(kind, finding.value) or ""
        shared = SharedIdentity(kind, value, finding.account_ids, finding.verified_on)
        target = (report.shared_unverified_phones if kind == IdentityKind.PHONE
                  else report.shared_verified_emails)
        target.append(shared)
    return report


def _kind(reason: str) -> str:
    return IdentityKind.PHONE if reason == SHARED_UNVERIFIED_PHONE else IdentityKind.EMAIL


def findings(session: Session | None = None) -> Iterator[Finding]:
    """Every finding, streamed from the database in a stable order."""
    session = session or db.session()
    if session.get_bind().dialect.name == "postgresql":
        # The rows are streamed through a server-side cursor, which PostgreSQL plans for its
        # first tenth (nested loops probing every account: 9 s at a million accounts); plan
        # for all of them (hash anti-joins: 2 s), with room to aggregate in memory.
        session.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    yield from _shared(session, IdentityKind.PHONE, SHARED_UNVERIFIED_PHONE, need_verified=False)
    yield from _shared(session, IdentityKind.EMAIL, SHARED_VERIFIED_EMAIL, need_verified=True)
    yield from _without_login(session)
    yield from _unionid_one_side(session)
    yield from _dead_deliveries(session)


def _shared(session: Any, kind: str, reason: str, need_verified: bool) -> Iterator[Finding]:
    """Values of `kind` held by two or more active accounts. Since a verified identity belongs
    to one account only, every such group is unverified on all accounts but at most one."""
    active = Account.status == AccountStatus.ACTIVE
    # Values held more than once, from the (kind, value) index alone; only those few are then
    # joined to their accounts (joining first meant a join of every identity of the kind).
    repeated = (
        select(Identity.lookup_key)
        .where(Identity.kind == kind)
        .group_by(Identity.lookup_key)
        .having(func.count() > 1)
    )
    if need_verified:
        repeated = repeated.having(func.max(_as_int(Identity.verified)) == 1)
    values = (
        select(Identity.lookup_key)
        .join(Account, Account.id == Identity.account_id)
        .where(Identity.kind == kind, active, Identity.lookup_key.in_(repeated))
        .group_by(Identity.lookup_key)
        .having(func.count(func.distinct(Identity.account_id)) > 1)
    )
    rows = session.execute(
        select(Identity.lookup_key, Identity.account_id, Identity.verified)
        .join(Account, Account.id == Identity.account_id)
        .where(Identity.kind == kind, active, Identity.lookup_key.in_(values))
        .order_by(Identity.lookup_key, Account.created_at, Identity.account_id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for value, group in groupby(rows, key=lambda row: row[0]):
        finding = Finding(reason, value, [], [])
        for _, account_id, verified in group:
            if account_id not in finding.account_ids:
                finding.account_ids.append(account_id)
            if verified and account_id not in finding.verified_on:
                finding.verified_on.append(account_id)
        yield finding


def _as_int(column: Any) -> Any:
    return case((column.is_(True), 1), else_=0).cast(Integer)


def _without_login(session: Any) -> Iterator[Finding]:
    rows = session.execute(
        select(Account.id)
        .where(Account.status == AccountStatus.ACTIVE, lacks_way_to_log_in(Account.id))
        .order_by(Account.created_at, Account.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for (account_id,) in rows:
        yield Finding(NO_WAY_TO_LOG_IN, None, [account_id])


def _unionid_one_side(session: Any) -> Iterator[Finding]:
    """Accounts holding an openid and no unionid, when unionids are in use at all (otherwise
    every WeChat account would be listed and none could be helped)."""
    unionid = Identity.kind == IdentityKind.WECHAT_UNIONID
    if not session.scalar(select(exists().where(unionid))):
        return
    other = aliased(Identity)
    held = select(other.id).where(other.kind == IdentityKind.WECHAT_UNIONID,
                                  other.account_id == Account.id)
    rows = session.execute(
        select(Account.id, func.min(Identity.namespace))
        .join(Identity, Identity.account_id == Account.id)
        .where(Account.status == AccountStatus.ACTIVE,
               Identity.kind == IdentityKind.WECHAT_OPENID, ~exists(held))
        .group_by(Account.id, Account.created_at)
        .order_by(Account.created_at, Account.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for account_id, appid in rows:
        yield Finding(UNIONID_ONE_SIDE, appid, [account_id])


def _dead_deliveries(session: Any) -> Iterator[Finding]:
    """Dead since more than `DEAD_FOR`: the last attempt's lease (`next_attempt_at`) ran out
    before the cut-off. The value is the delivery id, shown on the admin's events page."""
    rows = session.execute(
        select(EventDelivery.id)
        .where(EventDelivery.status == DeliveryStatus.DEAD,
               EventDelivery.next_attempt_at < utcnow() - DEAD_FOR)
        .order_by(EventDelivery.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for (delivery_id,) in rows:
        yield Finding(DEAD_DELIVERY, str(delivery_id), [])


def run_reconciliation(trigger: str) -> ReconciliationRun:
    """Computes the report and stores it as a new run, a batch of findings at a time."""
    run = ReconciliationRun(trigger=trigger, started_at=utcnow(), counts={})
    db.session.add(run)
    db.session.commit()
    counts = dict.fromkeys(REASONS, 0)
    batch: list[dict[str, Any]] = []
    # Read on a session of its own, so the batch commits below do not end the stream.
    with Session(db.engine) as reader:
        for finding in findings(reader):
            counts[finding.reason] += 1
            batch.append({"run_id": run.id, **asdict(finding)})
            if len(batch) >= STREAM_ROWS:
                _store(batch)
    _store(batch)
    run.counts = counts
    run.finished_at = utcnow()
    db.session.commit()
    return run


def _store(batch: list[dict[str, Any]]) -> None:
    if batch:
        db.session.execute(insert(ReconciliationFinding), batch)
        db.session.commit()
        batch.clear()


def latest_run() -> ReconciliationRun | None:
    return db.session.scalar(
        select(ReconciliationRun)
        .where(ReconciliationRun.finished_at.is_not(None))
        .order_by(ReconciliationRun.id.desc())
        .limit(1)
    )


def write_json(run: ReconciliationRun, out: IO[str]) -> None:
    """The stored run as one JSON document, written as it is read (the CLI's `--json`)."""
    out.write('{\n  "run": ' + json.dumps({"id": run.id, "counts": run.counts}))
    for reason, key in ((SHARED_UNVERIFIED_PHONE, "shared_unverified_phones"),
                        (SHARED_VERIFIED_EMAIL, "shared_verified_emails"),
                        (NO_WAY_TO_LOG_IN, "no_way_to_log_in"),
                        (UNIONID_ONE_SIDE, "unionid_one_side"),
                        (DEAD_DELIVERY, "dead_deliveries")):
        out.write(f',\n  "{key}": [')
        for index, (finding, value) in enumerate(shown_findings(run.id, reason)):
            if reason in (NO_WAY_TO_LOG_IN, UNIONID_ONE_SIDE):
                item: Any = finding.account_ids[0]
            elif reason == DEAD_DELIVERY:
                item = int(finding.value or 0)
            else:
                item = {"kind": _kind(reason), "value": value,
                        "account_ids": finding.account_ids, "verified_on": finding.verified_on}
            out.write(("," if index else "") + "\n    " + json.dumps(item))
        out.write("\n  ]")
    out.write("\n}\n")


def write_table(run: ReconciliationRun, out: IO[str]) -> None:
    """The stored run for a terminal, one section per finding."""
    titles = {
        SHARED_UNVERIFIED_PHONE: "Accounts sharing an unverified phone (suggested merges):",
        SHARED_VERIFIED_EMAIL: "Accounts sharing a verified email (suggested merges):",
        NO_WAY_TO_LOG_IN: "Accounts with no way left to log in:",
        UNIONID_ONE_SIDE: "WeChat accounts without a unionid (cannot be joined by unionid):",
        DEAD_DELIVERY: "Event deliveries dead for more than a day:",
    }
    for reason in REASONS:
        out.write(titles[reason] + "\n")
        empty = True
        for finding, value in shown_findings(run.id, reason):
            empty = False
            if reason == NO_WAY_TO_LOG_IN:
                out.write(f"  {finding.account_ids[0]}\n")
                continue
            if reason == UNIONID_ONE_SIDE:
                out.write(f"  {finding.account_ids[0]}  {finding.value}\n")
                continue
            if reason == DEAD_DELIVERY:
                out.write(f"  delivery {finding.value}\n")
                continue
            out.write(f"  {value}\n")
            for account_id in finding.account_ids:
                mark = "verified" if account_id in finding.verified_on else "unverified"
                out.write(f"    {account_id}  {mark}\n")
        if empty:
            out.write("  (none)\n")


def shown_findings(run_id: int,
                   reason: str) -> Iterator[tuple[ReconciliationFinding, str | None]]:
    """A run's findings of one reason, each with the value to show: for shared phones and
    emails the value behind the stored lookup key, looked up a page of findings at a time."""
    findings = stored_findings(run_id, reason)
    shared = reason in (SHARED_UNVERIFIED_PHONE, SHARED_VERIFIED_EMAIL)
    while page := list(islice(findings, STREAM_ROWS)):
        values = values_behind(_kind(reason), (finding.value for finding in page)) if shared else {}
        for finding in page:
            yield finding, values.get(finding.value or "", finding.value)


def stored_findings(run_id: int, reason: str | None = None,
                    after_id: int = 0) -> Iterator[ReconciliationFinding]:
    """A run's findings in order, read a keyset page at a time: memory stays bounded, and a
    caller may stop early without leaving a server-side cursor open."""
    while True:
        statement = select(ReconciliationFinding).where(
            ReconciliationFinding.run_id == run_id, ReconciliationFinding.id > after_id
        )
        if reason:
            statement = statement.where(ReconciliationFinding.reason == reason)
        page = db.session.scalars(
            statement.order_by(ReconciliationFinding.id).limit(STREAM_ROWS)
        ).all()
        yield from page
        if len(page) < STREAM_ROWS:
            return
        after_id = page[-1].id
