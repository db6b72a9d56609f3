"""Merge events reach relying parties as signed SETs (RFC 8417) pushed per RFC 8935, with
retries, exponential backoff, a dead letter and an admin retry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.events.delivery import deliver_due, retry_delay
from idp.events.models import DeliveryStatus, EventDelivery
from idp.events.outbox import DeliveryNotRetryable, dead_deliveries, retry_delivery
from idp.events.sets import ACCOUNT_MERGED, ACCOUNT_UNMERGED, event_type_uri
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.merge import merge_accounts, undo_merge
from idp.identity.models import AuditEvent
from idp.identity.rules import MergeRule, Proof
from idp.models_base import utcnow
from tests.conftest import ISSUER
from tests.events.conftest import grant_everyone
from tests.identity.conftest import age

ADMIN = Actor.admin("admin-1")


@pytest.fixture
def subscriber(make_client: Any, receiver: Any) -> Any:
    return make_client(name="Subscriber", events_uri=receiver.url)[0]


def merge(make_user: Any) -> tuple[Any, Any, Any]:
    """An admin merges two accounts; every RP with an events URI knows the loser."""
    survivor, loser = age(make_user(), 10), make_user()
    grant_everyone(loser)
    record = merge_accounts(survivor, loser, rule=MergeRule.ADMIN_DECISION,
                            proof=Proof.admin("test"), actor=ADMIN)
    return survivor, loser, record


def the_delivery() -> EventDelivery:
    db.session.expire_all()
    return db.session.scalars(select(EventDelivery)).one()


def later(seconds: float) -> Any:
    return utcnow() + timedelta(seconds=seconds)


def test_a_merge_event_is_a_signed_set_verifiable_with_the_jwks__rfc8417(
    client: Any, make_user: Any, subscriber: Any, receiver: Any
) -> None:
    survivor, loser, _ = merge(make_user)

    report = deliver_due()

    assert report.delivered == 1
    assert len(receiver.received) == 1
    keys = KeySet.import_key_set(client.get("/oauth/jwks").get_json())
    token = jwt.decode(receiver.tokens[0], keys, algorithms=["RS256"])
    assert token.header["typ"] == "secevent+jwt" and token.header["alg"] == "RS256"
    claims = token.claims
    jwt.JWTClaimsRegistry(  # what the receiver in the README checks
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": subscriber.client_id},
    ).validate(claims)
    assert claims["iss"] == ISSUER and claims["aud"] == subscriber.client_id
    assert claims["jti"] and isinstance(claims["iat"], int)
    assert "exp" not in claims and "sub" not in claims  # RFC 8417 §2.2
    assert claims["events"] == {
        event_type_uri(ACCOUNT_MERGED): {
            "subject": {"format": "iss_sub", "iss": ISSUER, "sub": loser.id},
            "sub": loser.id,
            "actor": "admin:admin-1",
            "channel": "admin",
            "merged_sub": loser.id,
            "surviving_sub": survivor.id,
        }
    }
    delivery = the_delivery()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1


def test_the_set_is_posted_as_application_secevent_jwt__rfc8935_2(
    make_user: Any, subscriber: Any, receiver: Any
) -> None:
    merge(make_user)
    deliver_due()
    entry = receiver.received[0]
    assert entry["path"] == "/events"
    assert entry["content_type"] == "application/secevent+jwt"
    assert entry["accept"] == "application/json"


def test_an_undo_sends_an_unmerged_event(make_user: Any, subscriber: Any, receiver: Any) -> None:
    survivor, loser, record = merge(make_user)
    undo_merge(record, ADMIN)
    deliver_due()
    events = [jwt.decode(t, _any_key(t)).claims["events"] for t in receiver.tokens]
    assert [next(iter(e)) for e in events] == [
        event_type_uri(ACCOUNT_MERGED), event_type_uri(ACCOUNT_UNMERGED)
    ]
    assert events[1][event_type_uri(ACCOUNT_UNMERGED)]["merged_sub"] == loser.id


def test_a_failed_delivery_is_retried_with_exponential_backoff(
    make_user: Any, subscriber: Any, receiver: Any
) -> None:
    receiver.answers = [503, 500]
    merge(make_user)

    first = utcnow()
    assert deliver_due(now=first).retrying == 1
    delivery = the_delivery()
    assert delivery.attempts == 1 and delivery.last_error == "HTTP 503"
    assert delivery.next_attempt_at == first + retry_delay(1)
    assert deliver_due(now=first + timedelta(seconds=1)).attempted == 0  # not due yet

    second = first + retry_delay(1)
    assert deliver_due(now=second).retrying == 1
    assert the_delivery().next_attempt_at == second + retry_delay(2)
    assert retry_delay(2) == 2 * retry_delay(1)

    assert deliver_due(now=second + retry_delay(2)).delivered == 1
    delivery = the_delivery()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 3
    # The receiver got the very same SET each time: it can deduplicate by jti.
    assert len({jwt.decode(t, _any_key(t)).claims["jti"] for t in receiver.tokens}) == 1


def test_the_backoff_is_capped(app: Any) -> None:
    app.config["IDP_EVENT_RETRY_BASE_SECONDS"] = 10
    app.config["IDP_EVENT_RETRY_MAX_SECONDS"] = 60
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_after_the_ceiling_the_delivery_is_dead_and_an_admin_can_retry_it(
    app: Any, make_user: Any, subscriber: Any, receiver: Any
) -> None:
    """Dead by time, not by a count of tries: a receiver failing for longer than
    IDP_EVENT_RETRY_CEILING_DAYS (issue 23 item 12)."""
    app.config["IDP_EVENT_RETRY_CEILING_DAYS"] = 0.5
    app.config["IDP_EVENT_RETRY_MAX_SECONDS"] = 3600
    receiver.answers = [500, 400] + [500] * 100
    merge(make_user)

    first = when = utcnow()
    while the_delivery().status == DeliveryStatus.PENDING:
        deliver_due(now=when)
        when = the_delivery().next_attempt_at
    delivery = the_delivery()
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.failing_since == first
    assert when - first >= timedelta(days=0.5) > when - first - retry_delay(delivery.attempts)
    assert [row.id for row in dead_deliveries()] == [delivery.id]
    assert deliver_due(now=later(10**7)).attempted == 0  # dead letters are left alone

    receiver.answers = []
    retry_delivery(delivery.id, ADMIN)
    assert the_delivery().failing_since is None  # a fresh ceiling
    assert deliver_due().delivered == 1
    assert the_delivery().status == DeliveryStatus.DELIVERED
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "event.retry")).one()
    assert (event.actor_type, event.details["previous_status"]) == ("admin", "dead")


def test_a_push_waits_behind_its_account_s_dead_one__issue23_12(
    app: Any, make_user: Any, subscriber: Any, receiver: Any
) -> None:
    """RFC 8935 push follows the same rule as RabbitMQ: per account and receiver, in order,
    also behind a dead delivery, until an admin retries it."""
    app.config["IDP_EVENT_RETRY_CEILING_DAYS"] = 0.01
    survivor, loser, record = merge(make_user)
    receiver.answers = [503] * 100
    when = utcnow()
    while the_delivery().status == DeliveryStatus.PENDING:
        deliver_due(now=when)
        when = the_delivery().next_attempt_at
    merged = the_delivery()
    assert merged.status == DeliveryStatus.DEAD
    undo_merge(record, ADMIN)
    receiver.answers = []
    received = len(receiver.received)

    assert deliver_due(now=later(3600)).attempted == 0  # the unmerge waits behind the merge
    assert len(receiver.received) == received

    retry_delivery(merged.id, ADMIN)
    assert deliver_due(now=later(3600)).delivered == 2
    events = [jwt.decode(t, _any_key(t)).claims["events"] for t in receiver.tokens[received:]]
    assert [next(iter(e)) for e in events] == [
        event_type_uri(ACCOUNT_MERGED), event_type_uri(ACCOUNT_UNMERGED)
    ]


def test_an_rfc8935_error_is_kept_for_the_admin(
    make_user: Any, subscriber: Any, receiver: Any
) -> None:
    receiver.answers = [400]
    merge(make_user)
    deliver_due()
    assert the_delivery().last_error == "HTTP 400: invalid_key (unknown kid)"


def test_an_unreachable_receiver_is_retried(make_user: Any, make_client: Any) -> None:
    make_client(name="Gone", events_uri="http://127.0.0.1:9/events")  # discard port: refused
    merge(make_user)
    assert deliver_due().retrying == 1
    assert "could not reach" in the_delivery().last_error


def test_a_delivered_event_cannot_be_retried(make_user: Any, subscriber: Any) -> None:
    merge(make_user)
    deliver_due()
    with pytest.raises(DeliveryNotRetryable):
        retry_delivery(the_delivery().id, ADMIN)


def test_a_claimed_delivery_is_not_sent_twice(
    make_user: Any, subscriber: Any, receiver: Any
) -> None:
    """Two workers: the second finds the row already claimed (leased) by the first."""
    from idp.events import delivery as module

    merge(make_user)
    row_id = the_delivery().id
    now = utcnow()
    assert module._claim(row_id, now) is True
    assert module._claim(row_id, now) is False
    assert deliver_due(now=now).attempted == 0
    assert receiver.received == []


def test_no_subscribers_no_events(make_user: Any, make_client: Any) -> None:
    make_client(name="Not subscribed")
    merge(make_user)
    assert db.session.scalars(select(EventDelivery)).all() == []


def _any_key(token: str) -> Any:
    """The IdP's own published keys (these tests check the signature elsewhere)."""
    from idp.oidc.context import keyring

    return keyring().verification_keys()
