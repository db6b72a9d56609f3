"""Account events published to the real RabbitMQ (issue 15): a durable topic exchange, routing
key = event type, persistent messages, `message_id` = the SET's `jti`, publisher confirms; at
least once and in order per account, through a broker outage, a cut connection and a worker
killed mid-batch."""

from __future__ import annotations

import json
import signal
import time
from collections import defaultdict
from typing import Any

import pika
import pika.exceptions
from joserfc import jwt
from sqlalchemy import select

from idp.events import sets
from idp.events.amqp import AmqpPublisher
from idp.events.delivery import deliver_due
from idp.events.models import DeliveryStatus, EventDelivery, Sink
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.status import disable_account, enable_account
from idp.models_base import utcnow
from idp.oidc.context import keyring
from tests.events.amqp_helpers import (
    AMQP_URL,
    Broker,
    CuttableProxy,
    kill,
    start_worker,
    worker_environment,
)
from tests.production.conftest import closed_port

ADMIN = Actor.admin("admin-1")


def amqp_rows() -> list[EventDelivery]:
    db.session.expire_all()
    return list(db.session.scalars(
        select(EventDelivery).where(EventDelivery.sink == Sink.AMQP).order_by(EventDelivery.id)
    ))


def jti_of(row: EventDelivery) -> str:
    return str(json.loads(row.payload)["jti"])


def test_events_reach_the_exchange_in_order_as_persistent_signed_sets(
    app: Any, client: Any, broker: Broker, make_user: Any
) -> None:
    account = make_user(name="Alice")
    disable_account(account, ADMIN)
    enable_account(account, ADMIN)
    rows = amqp_rows()

    report = deliver_due()

    messages = broker.drain(until=len(rows))
    assert report.delivered == len(rows) == len(messages) == 7
    assert [m.routing_key for m in messages] == [
        sets.ACCOUNT_CREATED, sets.IDENTITY_LINKED, sets.PHONE_CHANGED, sets.IDENTITY_LINKED,
        sets.PROFILE_UPDATED, sets.ACCOUNT_DISABLED, sets.ACCOUNT_ENABLED,
    ]
    assert [m.message_id for m in messages] == [jti_of(row) for row in rows]
    assert {m.delivery_mode for m in messages} == {2}  # persistent
    assert {m.content_type for m in messages} == {"application/secevent+jwt"}
    keys = keyring().verification_keys()
    token = jwt.decode(messages[-1].body.decode(), keys, algorithms=["RS256"])
    assert token.header["typ"] == "secevent+jwt"
    assert token.claims["jti"] == messages[-1].message_id
    body = token.claims["events"][sets.event_type_uri(sets.ACCOUNT_ENABLED)]
    assert body["sub"] == account.id and body["actor"] == "admin:admin-1"
    assert {row.status for row in amqp_rows()} == {DeliveryStatus.DELIVERED}


def test_the_exchange_is_a_durable_topic_exchange(app: Any, broker: Broker) -> None:
    """Declaring it again with other properties fails: it is durable and of type topic."""
    publisher = AmqpPublisher(AMQP_URL, broker.exchange)
    publisher.publish("account-created", b"{}", "m-1", "x/y")
    publisher.close()
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.exchange_declare(broker.exchange, exchange_type="topic", durable=True)
        try:
            channel.exchange_declare(broker.exchange, exchange_type="fanout", durable=True)
            raise AssertionError("the exchange accepted another type")
        except pika.exceptions.ChannelClosedByBroker as refused:
            assert refused.reply_code == 406  # PRECONDITION_FAILED
    finally:
        connection.close()


def test_the_body_may_be_the_claims_as_json(app: Any, broker: Broker, make_user: Any) -> None:
    app.config["IDP_AMQP_BODY"] = "claims"
    account = make_user()
    deliver_due()
    first = broker.drain(until=1)[0]
    assert first.content_type == "application/json"
    claims = json.loads(first.body)
    assert claims["jti"] == first.message_id
    assert claims["events"][sets.event_type_uri(sets.ACCOUNT_CREATED)]["sub"] == account.id


def test_while_the_broker_is_down_events_wait_in_order_with_backoff(
    app: Any, broker: Broker, make_user: Any
) -> None:
    app.config["IDP_AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"
    make_user()
    make_user()  # a second account: its first event is claimed in the same batch

    now = utcnow()
    report = deliver_due(now=now)

    # One try per round while the broker is away; the rest wait, their tries not counted.
    assert (report.retrying, report.delivered) == (1, 0)
    rows = amqp_rows()
    (failed,) = [row for row in rows if row.attempts]
    assert "not reachable" in (failed.last_error or "")
    assert "guest" not in (failed.last_error or "")  # the URL's password is never written out
    assert failed.next_attempt_at > now
    assert all(row.next_attempt_at <= utcnow() for row in rows if row is not failed)
    assert deliver_due().retrying == 1  # the other account's turn: one try again

    app.config["IDP_AMQP_URL"] = AMQP_URL
    later = max(row.next_attempt_at for row in amqp_rows())
    assert deliver_due(now=later, limit=100).delivered == len(rows)
    messages = broker.drain(until=len(rows))
    assert_in_order_per_account(messages, amqp_rows())
    assert len(messages) == len(rows)


def test_a_connection_cut_mid_batch_loses_nothing_and_duplicates_keep_their_id(
    app: Any, broker: Broker, make_user: Any
) -> None:
    proxy = CuttableProxy(("127.0.0.1", 5672))
    app.config["IDP_AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    for _ in range(8):
        make_user()
    rows = amqp_rows()
    publisher = AmqpPublisher.from_config(app.config)
    try:
        publisher.publish("warm-up", b"{}", "warm-up", "application/json")  # connected
        proxy.cut_after(12_000)  # a dozen publishes in
        when = utcnow()
        for _ in range(10):
            deliver_due(now=when, amqp=publisher, limit=500)
            if {row.status for row in amqp_rows()} == {DeliveryStatus.DELIVERED}:
                break
            when = min(row.next_attempt_at for row in amqp_rows()
                       if row.status == DeliveryStatus.PENDING)
    finally:
        publisher.close()
        proxy.close()

    assert proxy.cuts == 1
    messages = [m for m in broker.drain(until=len(rows) + 1) if m.message_id != "warm-up"]
    expected = [jti_of(row) for row in rows]
    assert set(m.message_id for m in messages) == set(expected)
    assert_in_order_per_account(messages, rows)
    assert {row.status for row in amqp_rows()} == {DeliveryStatus.DELIVERED}


def test_the_worker_killed_mid_batch_loses_nothing__real_process(
    app: Any, broker: Broker, make_user: Any, tmp_path: Any
) -> None:
    keyring().current("RS256")  # the signing keys exist before the worker starts
    for _ in range(40):
        make_user()
    rows = amqp_rows()
    env = worker_environment(app, IDP_EVENT_LEASE_SECONDS="1")
    log = tmp_path / "worker.log"

    first = start_worker(env, log)
    deadline = time.monotonic() + 60
    while len(broker.drain(timeout=0)) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert kill(first, signal.SIGKILL) == -signal.SIGKILL
    published_before_kill = len(broker.received)
    assert 0 < published_before_kill < len(rows), "the kill did not land mid-batch"

    second = start_worker(env, log)
    try:
        broker.drain(until=len(rows), timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            row.status == DeliveryStatus.DELIVERED for row in amqp_rows()
        ):
            time.sleep(0.2)
    finally:
        assert kill(second, signal.SIGTERM) == 0  # stops cleanly on SIGTERM

    messages = broker.drain(timeout=1)
    expected = [jti_of(row) for row in rows]
    assert set(m.message_id for m in messages) == set(expected), log.read_text()[-3000:]
    assert_in_order_per_account(messages, rows)
    assert {row.status for row in amqp_rows()} == {DeliveryStatus.DELIVERED}


def assert_in_order_per_account(messages: list[Any], rows: list[EventDelivery]) -> None:
    """Each account's events arrive in the order they happened (a duplicate may follow)."""
    subject_of = {jti_of(row): row.subject for row in rows}
    by_account: dict[str | None, list[Any]] = defaultdict(list)
    for message in messages:
        by_account[subject_of[message.message_id]].append(message)
    assert len(by_account) > 1
    for subject, received in by_account.items():
        assert first_occurrences(received) == [
            jti_of(row) for row in rows if row.subject == subject
        ]


def first_occurrences(messages: list[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for message in messages:
        seen.setdefault(message.message_id, None)
    return list(seen)
