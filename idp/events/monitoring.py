"""How event delivery is doing, read from the outbox itself (so it is right whichever process
delivers): pending, retrying, dead and held rows and the lag per sink, for `/metrics` and the admin
delivery page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import case, func, select, type_coerce

from idp.events.models import DeliveryStatus, EventDelivery, Sink, is_undelivered
from idp.extensions import db
from idp.models_base import UTCDateTime, utcnow


@dataclass
class SinkState:
    sink: str
    pending: int = 0  # not yet delivered, first try still to come or under way
    retrying: int = 0  # not yet delivered, at least one try failed or was abandoned
    dead: int = 0
    held: int = 0  # pending behind a dead delivery of the same account and receiver
    oldest_pending_at: datetime | None = None

    def lag_seconds(self, now: datetime | None = None) -> float:
        """How long the oldest undelivered event has been waiting (0 when none waits)."""
        if self.oldest_pending_at is None:
            return 0.0
        return max(((now or utcnow()) - self.oldest_pending_at).total_seconds(), 0.0)


def outbox_state() -> dict[str, SinkState]:
    """One query: counts by sink and the oldest undelivered row of each (also behind /metrics,
    scraped every few seconds)."""
    undelivered = EventDelivery.status == DeliveryStatus.PENDING
    rows = db.session.execute(
        select(
            EventDelivery.sink,
            func.sum(case((undelivered & (EventDelivery.attempts == 0), 1), else_=0)),
            func.sum(case((undelivered & (EventDelivery.attempts > 0), 1), else_=0)),
            func.sum(case((EventDelivery.status == DeliveryStatus.DEAD, 1), else_=0)),
            type_coerce(
                func.min(case((undelivered, EventDelivery.created_at), else_=None)), UTCDateTime()
            ),
        )
        # Only what is not delivered, on the status index: delivered rows (nearly all of them,
        # until retention purges them) are never read.
        .where(EventDelivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.DEAD)))
        .group_by(EventDelivery.sink)
    ).all()
    state = {sink: SinkState(sink) for sink in Sink.ALL}
    for sink, pending, retrying, dead, oldest in rows:
        state[sink] = SinkState(sink, int(pending or 0), int(retrying or 0), int(dead or 0),
                                oldest_pending_at=oldest)
    for sink, held in _held_behind_dead():
        state[sink].held = int(held or 0)
    return state


def _held_behind_dead() -> list[tuple[str, int]]:
    """Per sink, the pending rows that wait behind a dead one (the same account and receiver).
    Driven by the dead rows (few): one count per blocked line, on ix_event_delivery_line."""
    heads = (
        select(
            EventDelivery.sink,
            EventDelivery.subject,
            EventDelivery.client_id,
            func.min(EventDelivery.id).label("dead_id"),
        )
        .where(EventDelivery.status == DeliveryStatus.DEAD, EventDelivery.subject.is_not(None))
        .group_by(EventDelivery.sink, EventDelivery.subject, EventDelivery.client_id)
        .subquery()
    )
    behind = (
        select(func.count())
        .where(
            EventDelivery.subject == heads.c.subject,
            EventDelivery.sink == heads.c.sink,
            EventDelivery.client_id.is_not_distinct_from(heads.c.client_id),
            EventDelivery.id > heads.c.dead_id,
            is_undelivered(EventDelivery.status),
            EventDelivery.status == DeliveryStatus.PENDING,
        )
        .correlate(heads)
        .scalar_subquery()
    )
    rows = db.session.execute(select(heads.c.sink, func.sum(behind)).group_by(heads.c.sink))
    return [(row[0], row[1]) for row in rows]


class OutboxCollector:
    """`idp_event_outbox_rows{sink,state}` (state: pending, retrying, dead, and held — waiting
    behind a dead one; alert on dead > 0) and `idp_event_outbox_lag_seconds{sink}`."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.app.app_context():
            try:
                state = outbox_state()
            finally:
                db.session.remove()
        rows = GaugeMetricFamily(
            "idp_event_outbox_rows", "Outbox rows by sink and state", labels=["sink", "state"]
        )
        lag = GaugeMetricFamily(
            "idp_event_outbox_lag_seconds",
            "Age of the oldest undelivered event, by sink",
            labels=["sink"],
        )
        now = utcnow()
        for sink, counts in sorted(state.items()):
            rows.add_metric([sink, "pending"], counts.pending)
            rows.add_metric([sink, "retrying"], counts.retrying)
            rows.add_metric([sink, "dead"], counts.dead)
            rows.add_metric([sink, "held"], counts.held)
            lag.add_metric([sink], counts.lag_seconds(now))
        yield rows
        yield lag
