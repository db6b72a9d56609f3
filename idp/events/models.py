"""The transactional outbox of security events (RFC 8417 SETs delivered per RFC 8935)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, text
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
    DEAD = "dead"  # every retry failed; an admin can retry it


class EventDelivery(Model):
    __tablename__ = "event_delivery"
    __table_args__ = (
        # The worker's due query walks only undelivered rows, however many were ever sent.
        Index("ix_event_delivery_due", "next_attempt_at", "id",
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
