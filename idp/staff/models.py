"""Admin roles held by accounts, and the proposals that wait for a second admin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import Model
from idp.models_base import UTCDateTime, utcnow


class AdminRoleGrant(Model):
    __tablename__ = "admin_role_grant"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    # `admin:<id>`, `system:cli` …: the actor that granted it (the audit trail has the details).
    granted_by: Mapped[str] = mapped_column(String(80))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdminProposal(Model):
    """Four-eyes: a merge, undo or move one admin proposed, waiting for a second admin with the
    `identity` role (idp/admin/four_eyes.py). `subject` holds the ids the action needs."""

    __tablename__ = "admin_proposal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(16))  # merge, undo, move
    subject: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(String(255))
    proposed_by: Mapped[str] = mapped_column(String(36), index=True)
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # pending → approved (carried out) | rejected | withdrawn | failed (the engine refused)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    decided_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(255), nullable=True)


class AuditSeal(Model):
    """The tamper-evident chain over `audit_event` (idp/staff/audit_chain.py): one seal per
    record, `mac` = HMAC(IDP_AUDIT_KEY, prev ‖ the record), `prev` = the previous record's mac
    that day (the first of a day: the day's anchor). No foreign key: a deleted record leaves its
    seal behind, so `idp audit verify` can name it."""

    __tablename__ = "audit_seal"

    # The chain's order: assigned under the append lock, so it is the order the seals were made.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, unique=True)
    day: Mapped[str] = mapped_column(String(10), index=True)  # UTC, YYYY-MM-DD
    prev: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
