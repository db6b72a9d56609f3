"""How event delivery is doing, read from the outbox itself (so it is right whichever process
delivers): pending, retrying and dead rows and the lag per sink, for `/metrics` and the admin
delivery page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import case, func, select, type_coerce

from idp.events.models import DeliveryStatus, EventDelivery, Sink
from idp.extensions import db
from idp.models_base import UTCDateTime, utcnow


@dataclass
class SinkState:
    sink: str
    pending: int = 0  # not yet delivered, first try still to come or under way
    retrying: int = 0  # not yet delivered, at least one try failed or was abandoned
    dead: int = 0
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
                                oldest)
    return state


class OutboxCollector:
    """`idp_event_outbox_rows{sink,state}` and `idp_event_outbox_lag_seconds{sink}`."""

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
            lag.add_metric([sink], counts.lag_seconds(now))
        yield rows
        yield lag
