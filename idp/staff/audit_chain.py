"""A tamper-evident audit trail (issue 27 item 4; 等保 2.0 asks that audit records be protected
from deletion and modification).

Every `audit_event` row gets a seal (`audit_seal`): `mac = HMAC-SHA256(key, prev ‖ record)`,
where `prev` is the mac of the record before it the same UTC day, and the first record of a day
chains from the day's anchor `HMAC(key, "anchor:" ‖ day)`. The key (`IDP_AUDIT_KEY`, or the file
`IDP_AUDIT_KEY_FILE`, else generated once into instance/audit_key) is never in the database: who
can rewrite the tables cannot recompute the macs. `verify()` walks each day's chain and names the
first record that was altered, deleted, reordered or inserted behind the IdP's back.

Records older than `IDP_RETENTION_AUDIT_DAYS` may be purged (idp/maintenance/retention.py): their
seals stay and keep the chain linked, and `verify` counts them as purged rather than deleted.

Appends are serialised so two processes never fork a chain: the seals of a transaction are made
just before it commits, on PostgreSQL under a transaction-scoped advisory lock (held from then to
the commit only, and taken after every row lock the transaction holds, so it cannot deadlock with
them); SQLite has one writer at a time, and this transaction already holds the write lock. The
chain's order is the seals' `seq`, assigned under that lock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import Session

from idp.identity.models import AuditEvent
from idp.models_base import utcnow
from idp.staff.models import AuditSeal

ADVISORY_LOCK = 0x1D9A_0D17  # any constant: the id of "appending to the audit chain"
PENDING_KEY = "audit_chain_pending"


def init_app(app: Flask) -> None:
    app.extensions["idp_audit_key"] = _load_key(app)


def audit_key() -> bytes:
    return current_app.extensions["idp_audit_key"]


def _load_key(app: Flask) -> bytes:
    configured = app.config.get("IDP_AUDIT_KEY")
    if configured:
        return str(configured).encode()
    path = app.config.get("IDP_AUDIT_KEY_FILE")
    if path:
        return Path(path).read_text().strip().encode()
    from idp.config import _instance_secret

    return _instance_secret(Path(app.config["IDP_INSTANCE_PATH"]) / "audit_key").encode()


def canonical(record: AuditEvent) -> bytes:
    return json.dumps(
        [record.id, record.created_at.isoformat(), record.action, record.account_id,
         record.actor_type, record.actor_id, record.reason, record.details or {},
         record.request_id],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    ).encode()


def anchor(key: bytes, day: str) -> str:
    return hmac.new(key, f"anchor:{day}".encode(), hashlib.sha256).hexdigest()


def seal_mac(key: bytes, prev: str, record: AuditEvent) -> str:
    return hmac.new(key, prev.encode() + b"\n" + canonical(record), hashlib.sha256).hexdigest()


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    new = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if not new or not has_app_context() or "idp_audit_key" not in current_app.extensions:
        return
    for record in new:
        if record.created_at is None:
            record.created_at = utcnow()
    session.info.setdefault(PENDING_KEY, []).extend(new)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if not session.info.get(PENDING_KEY) and not any(
        isinstance(obj, AuditEvent) for obj in session.new
    ):
        return
    session.flush()  # every record of the transaction is written and has its id
    pending = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
    key = audit_key()
    last: dict[str, str] = {}
    for record in sorted(pending, key=lambda r: r.id):
        day = record.created_at.date().isoformat()
        if day not in last:
            last[day] = connection.execute(
                select(AuditSeal.mac).where(AuditSeal.day == day)
                .order_by(AuditSeal.seq.desc()).limit(1)
            ).scalar() or anchor(key, day)
        mac = seal_mac(key, last[day], record)
        connection.execute(insert(AuditSeal).values(
            event_id=record.id, day=day, prev=last[day], mac=mac))
        last[day] = mac


@event.listens_for(Session, "after_rollback")
def _transaction_over(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


@dataclass(frozen=True)
class Problem:
    event_id: int
    what: str  # altered, deleted, out_of_order, unsealed

    def __str__(self) -> str:
        texts = {
            "altered": "was altered (its mac does not match)",
            "deleted": "was deleted (its seal remains)",
            "out_of_order": "does not follow the record before it (a record was deleted, "
                            "inserted or moved before it)",
            "unsealed": "has no seal (written outside the IdP)",
        }
        return f"audit record #{self.event_id} {texts[self.what]}"


@dataclass(frozen=True)
class Verification:
    records: int
    days: int
    unsealed_before_chain: int
    problems: list[Problem]
    purged: int = 0  # missing records the retention purge may have removed


def verify(session: Any) -> Verification:
    """Walks every day's chain in seal order; every problem found, first ones first."""
    key = audit_key()
    purgeable_until = _purgeable_until()
    purged = 0
    seals = session.execute(select(AuditSeal).order_by(AuditSeal.day, AuditSeal.seq))
    events = {row.id: row for row in session.scalars(select(AuditEvent))}
    problems: list[Problem] = []
    days: set[str] = set()
    sealed: set[int] = set()
    expected: dict[str, str] = {}
    for (seal,) in seals:
        days.add(seal.day)
        sealed.add(seal.event_id)
        prev = expected.get(seal.day) or anchor(key, seal.day)
        record = events.get(seal.event_id)
        if record is None and purgeable_until is not None and seal.day <= purgeable_until:
            purged += 1  # its seal still links the chain
        elif record is None:
            problems.append(Problem(seal.event_id, "deleted"))
        elif not hmac.compare_digest(seal.mac, seal_mac(key, seal.prev, record)) or (
            record.created_at.date().isoformat() != seal.day
        ):
            problems.append(Problem(seal.event_id, "altered"))
        elif not hmac.compare_digest(seal.prev, prev):
            problems.append(Problem(seal.event_id, "out_of_order"))
        expected[seal.day] = seal.mac
    first_sealed = min(sealed) if sealed else None
    legacy = 0
    for event_id in sorted(set(events) - sealed):
        if first_sealed is None or event_id < first_sealed:
            legacy += 1
        else:
            problems.append(Problem(event_id, "unsealed"))
    problems.sort(key=lambda p: p.event_id)
    return Verification(len(events), len(days), legacy, problems, purged)


def _purgeable_until() -> str | None:
    """The last UTC day whose records `IDP_RETENTION_AUDIT_DAYS` allows the purge to remove."""
    keep = current_app.config.get("IDP_RETENTION_AUDIT_DAYS")
    if not keep:
        return None
    return (utcnow() - timedelta(days=float(keep))).date().isoformat()


SYSLOG_FACILITY_AUTHPRIV = 10
SYSLOG_SEVERITY_INFO = 6


def rfc5424_lines(session: Any, hostname: str, since: Any = None) -> Iterator[str]:
    """Each record as one RFC 5424 syslog message (facility authpriv, severity info), with the
    record's fields and its mac as structured data, for a SIEM."""
    query = select(AuditEvent, AuditSeal.mac).outerjoin(
        AuditSeal, AuditSeal.event_id == AuditEvent.id).order_by(AuditEvent.id)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    priority = SYSLOG_FACILITY_AUTHPRIV * 8 + SYSLOG_SEVERITY_INFO
    for record, mac in session.execute(query):
        fields = {"id": record.id, "action": record.action, "actor": record.actor_type
                  + (f":{record.actor_id}" if record.actor_id else ""),
                  "account": record.account_id or "", "mac": mac or ""}
        data = " ".join(f'{name}="{_sd_escape(str(value))}"' for name, value in fields.items())
        timestamp = record.created_at.isoformat(timespec="microseconds").replace("+00:00", "Z")
        message = json.dumps({"reason": record.reason, "details": record.details or {}},
                             ensure_ascii=False, sort_keys=True, default=str)
        yield (f"<{priority}>1 {timestamp} {hostname} idp - audit [idp-audit@32473 {data}] "
               f"\ufeff{message}")


def _sd_escape(value: str) -> str:
    """RFC 5424 §6.3.3: '"', '\\' and ']' are escaped inside a PARAM-VALUE."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
