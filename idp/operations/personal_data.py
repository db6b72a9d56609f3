"""`idp data encrypt` and `idp keys rotate-data`: bring every personal value to the current
keys (`idp.field_crypto`), in batches, while the IdP serves.

A row needs work when it is plain (written before encryption was installed) or sealed or
indexed under a key version that is no longer the first. Each batch is one short transaction:
a job killed half-way loses only the batch in flight (rolled back), and the next run carries on.
The rows themselves say what is done, so no progress is kept anywhere else. Lookups find a row
in every state (`Identity.value_is` asks for the plain value and the index under every key
version), so sign-in by phone works throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Text, select, type_coerce, update
from sqlalchemy.orm.attributes import flag_modified

from idp.accounts.models import SmsCode
from idp.extensions import db
from idp.field_crypto import BlindIndex, FieldCipher, personal_data
from idp.identity.models import (
    PERSONAL_CLAIMS,
    SEALED_DETAIL_KEYS,
    AuditEvent,
    Identity,
    IdentityKind,
    MergeRecord,
    ProfileClaim,
    ReconciliationFinding,
)
from idp.maintenance.reconciliation import SHARED_UNVERIFIED_PHONE, SHARED_VERIFIED_EMAIL

DEFAULT_BATCH = 500
Progress = Callable[[str, int, int], None]  # table, last id of the batch, rows rewritten


@dataclass(frozen=True)
class PersonalTable:
    name: str
    model: Any
    raw: Any  # the stored form of the personal column, read past its type
    where: tuple[Any, ...]
    rewrite: Callable[[Any, Any], bool]  # (row, raw) → rewritten?


def _sealed_current(raw: Any) -> bool:
    cipher = personal_data().cipher
    return isinstance(raw, str) and FieldCipher.is_sealed(raw) and cipher.is_current(raw)


def _identity(row: Identity, raw_sealed: str | None) -> bool:
    if _sealed_current(raw_sealed) and personal_data().index.is_current(row.lookup_key):
        return False
    row.value = row.value  # plain (legacy: held in lookup_key) → sealed and indexed anew
    flag_modified(row, "sealed_value")
    return True


def _claim(row: ProfileClaim, raw: str) -> bool:
    if _sealed_current(raw):
        return False
    row.value = str(row.value)
    flag_modified(row, "value")
    return True


def _audit(row: AuditEvent, raw: Any) -> bool:
    if not isinstance(raw, dict) or all(
        raw.get(key) is None or _sealed_current(raw[key]) for key in SEALED_DETAIL_KEYS
    ):
        return False
    flag_modified(row, "details")
    return True


def _merge(row: MergeRecord, raw: Any) -> bool:
    if raw is None or _sealed_current(raw):
        return False
    flag_modified(row, "snapshot")
    return True


def _sms_code(row: SmsCode, raw: str) -> bool:
    """Only the index is kept; a code indexed under an old key cannot be re-indexed, and
    dies within minutes anyway."""
    if BlindIndex.is_index(raw):
        return False
    db.session.execute(update(SmsCode).where(SmsCode.id == row.id).values(phone=raw))
    return True


FINDING_KINDS = {SHARED_UNVERIFIED_PHONE: IdentityKind.PHONE,
                 SHARED_VERIFIED_EMAIL: IdentityKind.EMAIL}


def _finding(row: ReconciliationFinding, raw: str | None) -> bool:
    """Findings hold lookup keys; one stored before encryption holds the value itself."""
    if raw is None or BlindIndex.is_index(raw):
        return False
    row.value = personal_data().index.key(FINDING_KINDS[row.reason], raw)
    return True


def tables() -> tuple[PersonalTable, ...]:
    return (
        PersonalTable("identity", Identity, type_coerce(Identity.sealed_value, Text),
                      (Identity.kind.in_(IdentityKind.PERSONAL),), _identity),
        PersonalTable("profile_claim", ProfileClaim, type_coerce(ProfileClaim.value, Text),
                      (ProfileClaim.name.in_(PERSONAL_CLAIMS),), _claim),
        PersonalTable("audit_event", AuditEvent, type_coerce(AuditEvent.details, JSON),
                      (), _audit),
        PersonalTable("merge_record", MergeRecord, type_coerce(MergeRecord.snapshot, JSON),
                      (), _merge),
        PersonalTable("sms_code", SmsCode, type_coerce(SmsCode.phone, Text), (), _sms_code),
        PersonalTable("reconciliation_finding", ReconciliationFinding,
                      type_coerce(ReconciliationFinding.value, Text),
                      (ReconciliationFinding.reason.in_(FINDING_KINDS),), _finding),
    )


def _batches(table: PersonalTable, size: int) -> Iterator[tuple[list[Any], int]]:
    """Keyset pages in primary-key order: each page is one index range scan."""
    after = 0
    while True:
        rows = db.session.execute(
            select(table.model, table.raw.label("raw")).where(table.model.id > after, *table.where)
            .order_by(table.model.id).limit(size)
        ).all()
        if not rows:
            return
        after = rows[-1][0].id
        yield list(rows), after


def seal_personal_data(batch_size: int = DEFAULT_BATCH,
                       progress: Progress | None = None) -> dict[str, int]:
    """Rewrites what is plain or under an old key version; returns the rows rewritten by
    table. One commit per batch."""
    rewritten: dict[str, int] = {}
    for table in tables():
        rewritten[table.name] = 0
        for rows, last_id in _batches(table, batch_size):
            changed = sum(table.rewrite(row, raw) for row, raw in rows)
            db.session.commit()
            rewritten[table.name] += changed
            if progress is not None:
                progress(table.name, last_id, changed)
    return rewritten


def rows_left(batch_size: int = DEFAULT_BATCH) -> dict[str, int]:
    """How many rows a run would rewrite (nothing is written): 0 everywhere before an old key
    version is dropped from the settings."""
    left: dict[str, int] = {}
    for table in tables():
        left[table.name] = 0
        for rows, _last_id in _batches(table, batch_size):
            left[table.name] += sum(table.rewrite(row, raw) for row, raw in rows)
            db.session.rollback()
    return left
