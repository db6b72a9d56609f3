"""The order check stays cheap under a long outage's backlog (issue 23 item 12): the worker's
due query and the `held` count read each account's line on `ix_event_delivery_line`, on both
backends, over thousands of undelivered events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from idp.events import delivery
from idp.events.models import DeliveryStatus, EventDelivery, Sink
from idp.events.monitoring import outbox_state
from idp.extensions import db
from idp.models_base import utcnow

SUBJECTS = 1000
EVENTS_EACH = 8


def seed_backlog() -> None:
    """A week without the broker: every account's line waits, one in ten behind a dead head."""
    now = utcnow()
    rows = [
        {
            "sink": Sink.AMQP, "client_id": None, "subject": f"sub-{subject:05d}",
            "event_type": "profile-updated", "payload": "{}",
            "status": DeliveryStatus.DEAD if n == 0 and subject % 10 == 0
            else DeliveryStatus.PENDING,
            "attempts": 40 if n == 0 else 0,
            "next_attempt_at": now - timedelta(minutes=1),
            "created_at": now - timedelta(days=7), "failing_since": None,
        }
        for n in range(EVENTS_EACH) for subject in range(SUBJECTS)
    ]
    db.session.execute(sa.insert(EventDelivery), rows)
    db.session.commit()
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")


@contextmanager
def statements() -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)


def plan_of(statement: str, parameters: Any) -> str:
    explain = "EXPLAIN QUERY PLAN " if db.engine.dialect.name == "sqlite" else "EXPLAIN "
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql(explain + statement, parameters).all()
    return "\n".join(str(row[-1]) for row in rows)


def test_the_order_check_probes_each_line_on_its_index(app: Any) -> None:
    seed_backlog()

    with statements() as seen:
        due = delivery._due(utcnow(), 50)
        state = outbox_state()

    # The heads of the lines that are not held, in order; nobody behind a dead one.
    assert len(due) == 50
    assert all(int(db.session.get(EventDelivery, i).subject[4:]) % 10 for i, _ in due)
    assert state[Sink.AMQP].dead == SUBJECTS // 10
    assert state[Sink.AMQP].held == SUBJECTS // 10 * (EVENTS_EACH - 1)
    line_queries = [(s, p) for s, p in seen if "event_delivery_1" in s or "dead_id" in s]
    assert len(line_queries) >= 2
    for statement, parameters in line_queries:
        assert "ix_event_delivery_line" in plan_of(statement, parameters), statement
