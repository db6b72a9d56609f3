"""The transactional outbox of security events (RFC 8417 SETs delivered per RFC 8935)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Index, Integer, String, Text, literal, text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import Model
from idp.models_base import UTCDateTime, utcnow


class Sink:
    """Where a delivery goes: a relying party's URI (RFC 8935 push, back-channel logout), or the
    RabbitMQ exchange (`IDP_AMQP_URL`)."""

    PUSH = "push"
    AMQP = "amqp"
    ALL = (PUSH, AMQP)


class DeliveryStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    # Failing for longer than IDP_EVENT_RETRY_CEILING_DAYS; an admin can retry it. It still
    # holds its line: later events of the account to the same receiver wait behind it.
    DEAD = "dead"
    # Not delivered yet: what holds a line.
    UNDELIVERED = (PENDING, DEAD)


def is_undelivered(status: Any) -> ColumnElement[bool]:
    """`status IN ('pending', 'dead')` with the values written into the SQL: SQLite uses a
    partial index only when the query's own terms, literals and all, imply the index's WHERE."""
    return status.in_([literal(value, literal_execute=True)
                       for value in DeliveryStatus.UNDELIVERED])


class EventDelivery(Model):
    __tablename__ = "event_delivery"
    __table_args__ = (
        # The worker's due query walks only undelivered rows, however many were ever sent.
        Index("ix_event_delivery_due", "next_attempt_at", "id",
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
        # The order check (idp/events/delivery.py `_due`): is an earlier event of this account
        # to this receiver still undelivered? An index probe per candidate, whatever the backlog.
        Index("ix_event_delivery_line", "subject", "sink", "client_id", "id",
              sqlite_where=text("status IN ('pending', 'dead')"),
              postgresql_where=text("status IN ('pending', 'dead')")),
        # Retention walks only delivered rows.
        Index("ix_event_delivery_delivered_at", "delivered_at",
              sqlite_where=text("status = 'delivered'"),
              postgresql_where=text("status = 'delivered'")),
        # The dashboard's delivery outcomes per day (usage/rollups.py) read a range of days.
        Index("ix_event_delivery_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sink: Mapped[str] = mapped_column(String(16), default=Sink.PUSH, server_default=Sink.PUSH)
    # The receiving relying party; None for the AMQP sink.
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # The account the event is about: deliveries of one account leave in order, per receiver.
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    # The claims of the SET; it is signed at delivery time with the then-current key.
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When the current run of failures began (None: not failing). A delivery is dead only once
    # it has failed for longer than the ceiling, however many tries that took.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
