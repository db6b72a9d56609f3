"""A long broker outage (issue 23 item 12), with the real RabbitMQ behind a proxy that is cut
for days of simulated time: an outage shorter than `IDP_EVENT_RETRY_CEILING_DAYS` ends with every
event delivered, none dead, in order per account; beyond the ceiling, the failing event is dead
(an alert: metric and log line) and holds its account's line — later events wait behind it,
through the broker's return and an admin's retry of a later one, until the admin retries it.

Time is simulated: each round runs at the `now` the previous one scheduled (`deliver_due(now=)`),
so days of backoff take seconds."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from idp.events import sets
from idp.events.delivery import deliver_due
from idp.events.models import DeliveryStatus, EventDelivery
from idp.events.outbox import retry_delivery
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.status import disable_account
from idp.models_base import utcnow
from tests.events.amqp_helpers import Broker, CuttableProxy
from tests.events.test_amqp import amqp_rows, assert_in_order_per_account, jti_of
from tests.events.test_watching import metric

ADMIN = Actor.admin("admin-1")
# What an account's first minutes make: created, phone and password ways, phone, profile, then
# disabled by an admin.
SIX_EVENTS = [
    sets.ACCOUNT_CREATED, sets.IDENTITY_LINKED, sets.PHONE_CHANGED, sets.IDENTITY_LINKED,
    sets.PROFILE_UPDATED, sets.ACCOUNT_DISABLED,
]


@pytest.fixture
def proxy(app: Any, broker: Broker) -> Iterator[CuttableProxy]:
    relay = CuttableProxy(("127.0.0.1", 5672))
    app.config["IDP_AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:{relay.port}/"
    app.config["IDP_EVENT_RETRY_MAX_SECONDS"] = 3600  # fewer simulated rounds per day
    yield relay
    relay.close()


def account_with_six_events(make_user: Any) -> Any:
    account = make_user(name="Alice")
    disable_account(account, ADMIN)
    return account


def events_of(account: Any) -> list[EventDelivery]:
    return [row for row in amqp_rows() if row.subject == account.id]


def run_outage(start: datetime, days: float) -> datetime:
    """Delivery rounds while the broker is away until `days` have passed; returns the simulated
    time then. At each moment, rounds run until nothing is due (each tries one line's head, as
    rounds every few seconds would), then time jumps to the next try."""
    now, end = start, start + timedelta(days=days)
    while now < end:
        if deliver_due(now=now, limit=100).attempted:
            continue
        waiting = [row.next_attempt_at for row in amqp_rows()
                   if row.status == DeliveryStatus.PENDING and row.next_attempt_at > now]
        if not waiting:
            break
        now = min(waiting)
    return now


def test_an_outage_of_two_days_loses_nothing_kills_nothing_and_keeps_the_order__issue23_12(
    app: Any, broker: Broker, proxy: CuttableProxy, make_user: Any
) -> None:
    """The old rule (8 tries, 30 s doubling) killed the first event after about an hour; the
    ceiling is a week by default, and two days of outage stay within it."""
    first, second = account_with_six_events(make_user), account_with_six_events(make_user)
    proxy.go_down()

    now = run_outage(utcnow(), days=2)

    rows = amqp_rows()
    assert proxy.refused > 40  # tried all along, with backoff
    assert {row.status for row in rows} == {DeliveryStatus.PENDING}  # none dead
    assert max(row.attempts for row in rows) > 8  # more tries than the old ceiling allowed
    assert broker.drain(timeout=0.5) == []

    proxy.come_back()
    report = deliver_due(now=now + timedelta(hours=1), limit=100)

    assert report.delivered == len(rows) == 12
    messages = broker.drain(until=len(rows))
    assert_in_order_per_account(messages, rows)
    assert [m.routing_key for m in messages if m.message_id in
            {jti_of(row) for row in events_of(first)}] == SIX_EVENTS
    assert len(events_of(second)) == 6
    assert {row.status for row in amqp_rows()} == {DeliveryStatus.DELIVERED}


def test_beyond_the_ceiling_the_dead_event_holds_its_account_s_line_until_an_admin_retry(
    app: Any, client: Any, broker: Broker, proxy: CuttableProxy, make_user: Any, caplog: Any
) -> None:
    app.config["IDP_EVENT_RETRY_CEILING_DAYS"] = 1
    account = account_with_six_events(make_user)
    created, *later = events_of(account)
    proxy.go_down()

    with caplog.at_level(logging.ERROR, logger="idp.events.delivery"):
        now = run_outage(utcnow(), days=1.5)

    # The alert: the first event is dead, an ERROR line says so, /metrics counts it and the
    # five that wait behind it.
    db.session.expire_all()
    assert db.session.get(EventDelivery, created.id).status == DeliveryStatus.DEAD
    assert {row.status for row in events_of(account)[1:]} == {DeliveryStatus.PENDING}
    (alert,) = [r.getMessage() for r in caplog.records if "is dead" in r.getMessage()]
    assert f"event delivery {created.id} (account-created to amqp)" in alert
    assert "IDP_EVENT_RETRY_CEILING_DAYS" in alert and "wait behind it" in alert
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "idp_event_outbox_rows", sink="amqp", state="dead") == 1
    assert metric(text, "idp_event_outbox_rows", sink="amqp", state="held") == 5

    # The broker is back: another account's events flow, this one's wait behind the dead one,
    # even one that an admin retried on its own.
    proxy.come_back()
    retry_delivery(later[-1].id, ADMIN)
    newcomer = make_user()
    deliver_due(now=now + timedelta(days=1), limit=100)
    published = {m.message_id for m in broker.drain(until=len(events_of(newcomer)))}
    assert published == {jti_of(row) for row in events_of(newcomer)}
    assert {row.status for row in events_of(account)} == {
        DeliveryStatus.DEAD, DeliveryStatus.PENDING
    }

    # The admin's retry: the account's events leave, all six, in the order they happened.
    retry_delivery(created.id, ADMIN)
    report = deliver_due(now=now + timedelta(days=1), limit=100)

    assert report.delivered == 6
    messages = [m for m in broker.drain(until=len(published) + 6)
                if m.message_id not in published]
    assert [m.message_id for m in messages] == [jti_of(row) for row in events_of(account)]
    assert [m.routing_key for m in messages] == SIX_EVENTS
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "idp_event_outbox_rows", sink="amqp", state="held") == 0
