"""Event delivery can be watched and stopped (issue 17 item 4): outbox rows by sink and state,
lag and delivery latency in /metrics; a debug line per round and an info line per redelivery;
`idp worker` stops cleanly on SIGTERM."""

from __future__ import annotations

import logging
import re
import signal
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from idp.events.delivery import deliver_due
from idp.events.models import DeliveryStatus, EventDelivery, Sink
from idp.events.sets import ACCOUNT_DISABLED
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.status import disable_account
from idp.models_base import utcnow
from idp.oidc.context import keyring
from tests.events.amqp_helpers import kill, start_worker, worker_environment
from tests.events.conftest import grant_everyone

ADMIN = Actor.admin("admin-1")


def subscribed_disable(make_user: Any, make_client: Any, url: str) -> EventDelivery:
    make_client(name="RP", events_uri=url, event_types=[ACCOUNT_DISABLED])
    account = make_user()
    grant_everyone(account)
    disable_account(account, ADMIN)
    return push_row()


def push_row() -> EventDelivery:
    db.session.expire_all()
    return db.session.scalars(select(EventDelivery).where(EventDelivery.sink == Sink.PUSH)).one()


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    raise AssertionError(f"no {name}{{{wanted}}} in /metrics")


def test_metrics_show_pending_retrying_dead_and_lag_per_sink__issue17_4(
    app: Any, client: Any, make_user: Any, make_client: Any, receiver: Any
) -> None:
    app.config["IDP_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:1/"  # queued, never sent here
    receiver.answers = [503]
    row = subscribed_disable(make_user, make_client, receiver.url)
    backdated = utcnow() - timedelta(seconds=90)
    db.session.execute(
        EventDelivery.__table__.update().where(EventDelivery.sink == Sink.AMQP)
        .values(created_at=backdated, next_attempt_at=utcnow() + timedelta(hours=1))
    )
    db.session.commit()
    deliver_due()  # the push fails once: retrying
    dead = EventDelivery(sink=Sink.PUSH, client_id=row.client_id, event_type=ACCOUNT_DISABLED,
                         payload="{}", status=DeliveryStatus.DEAD, attempts=8)
    db.session.add(dead)
    db.session.commit()
    amqp_rows = db.session.query(EventDelivery).filter_by(sink=Sink.AMQP).count()

    text = client.get("/metrics").get_data(as_text=True)

    assert metric(text, "idp_event_outbox_rows", sink="push", state="retrying") == 1
    assert metric(text, "idp_event_outbox_rows", sink="push", state="dead") == 1
    assert metric(text, "idp_event_outbox_rows", sink="push", state="pending") == 0
    assert metric(text, "idp_event_outbox_rows", sink="amqp", state="pending") == amqp_rows > 0
    assert metric(text, "idp_event_outbox_lag_seconds", sink="amqp") >= 90
    assert metric(text, "idp_event_deliveries_total", sink="push", outcome="retrying") >= 1


def test_delivery_latency_is_observed_per_sink(
    app: Any, client: Any, make_user: Any, make_client: Any, receiver: Any
) -> None:
    subscribed_disable(make_user, make_client, receiver.url)
    before = _latency_count(client.get("/metrics").get_data(as_text=True))

    assert deliver_due().delivered == 1

    assert _latency_count(client.get("/metrics").get_data(as_text=True)) == before + 1


def _latency_count(text: str) -> float:
    try:
        return metric(text, "idp_event_delivery_latency_seconds_count", sink="push")
    except AssertionError:
        return 0.0


def test_a_round_is_logged_at_debug_and_a_redelivery_at_info__issue17_4(
    app: Any, make_user: Any, make_client: Any, receiver: Any, caplog: Any
) -> None:
    receiver.answers = [500]
    row = subscribed_disable(make_user, make_client, receiver.url)
    caplog.set_level(logging.DEBUG, logger="idp.events.delivery")

    deliver_due()
    deliver_due(now=push_row().next_attempt_at)

    records = [(r.levelno, r.getMessage()) for r in caplog.records
               if r.name == "idp.events.delivery"]
    rounds = [message for level, message in records if level == logging.DEBUG]
    assert rounds == ["event delivery round: 0 delivered, 1 retrying, 0 dead",
                      "event delivery round: 1 delivered, 0 retrying, 0 dead"]
    (redelivery,) = [message for level, message in records if level == logging.INFO]
    assert redelivery.startswith(f"redelivering event {row.id} ({ACCOUNT_DISABLED} to ")
    assert "attempt 2" in redelivery and "HTTP 500" in redelivery


def test_a_lease_that_ran_out_is_logged_as_such(
    app: Any, make_user: Any, make_client: Any, receiver: Any, caplog: Any
) -> None:
    from idp.events import delivery

    subscribed_disable(make_user, make_client, receiver.url)
    now = utcnow()
    assert delivery._claim(push_row().id, now)  # a worker claimed it, then died
    caplog.set_level(logging.INFO, logger="idp.events.delivery")

    deliver_due(now=now + timedelta(seconds=61))

    assert any("its lease expired" in r.getMessage() for r in caplog.records)


def test_idp_worker_stops_cleanly_on_sigterm_mid_delivery__real_process(
    app: Any, make_user: Any, make_client: Any, receiver: Any, tmp_path: Any
) -> None:
    """SIGTERM while a slow receiver holds a delivery: the worker finishes that one, records
    it, and exits 0 at once — not a lease (60 s) later, not leaving the row claimed."""
    keyring().current("RS256")
    receiver.delay = 1.5
    subscribed_disable(make_user, make_client, receiver.url)
    log = tmp_path / "worker.log"
    process = start_worker(worker_environment(app, IDP_EVENT_LEASE_SECONDS="60"), log)
    try:
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.received, log.read_text()[-2000:]
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - stopping < 5
    finally:
        kill(process)
    row = push_row()
    assert row.status == DeliveryStatus.DELIVERED and row.attempts == 1
    output = log.read_text()
    assert "event worker stopping (signal SIGTERM)" in output
    assert "event worker stopped" in output
