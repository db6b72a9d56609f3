"""The transactional outbox: events are written in the transaction of the change they report,
so a merge and its events land together or not at all. Delivery happens later (`delivery.py`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from idp.events.models import DeliveryStatus, EventDelivery
from idp.events.sets import account_event, set_claims
from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.models_base import utcnow
from idp.oidc.models import Client


class DeliveryNotRetryable(LookupError):
    """No such delivery, or it was delivered already."""


def subscribed_clients() -> list[Client]:
    return list(
        db.session.scalars(
            select(Client)
            .where(Client.events_uri.is_not(None), Client.events_uri != "")
            .order_by(Client.client_id)
        )
    )


def enqueue_account_event(
    event_type: str, merged_sub: str, surviving_sub: str
) -> list[EventDelivery]:
    """One pending delivery per client with an events URI, in the caller's transaction."""
    events = account_event(event_type, merged_sub, surviving_sub)
    rows = []
    for client in subscribed_clients():
        row = EventDelivery(
            client_id=client.client_id,
            event_type=event_type,
            payload=json.dumps(set_claims(client.client_id, events), sort_keys=True),
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
            created_at=utcnow(),
        )
        db.session.add(row)
        rows.append(row)
    return rows


def dead_deliveries(limit: int = 100) -> list[EventDelivery]:
    """The dead letters, newest first, for the admin UI."""
    return list(
        db.session.scalars(
            select(EventDelivery)
            .where(EventDelivery.status == DeliveryStatus.DEAD)
            .order_by(EventDelivery.id.desc())
            .limit(limit)
        )
    )


def retry_delivery(delivery_id: int, actor: Actor) -> EventDelivery:
    """An admin sends a dead (or still pending) delivery again now, with a fresh set of tries."""
    row = db.session.get(EventDelivery, delivery_id)
    if row is None or row.status == DeliveryStatus.DELIVERED:
        raise DeliveryNotRetryable(f"no undelivered event delivery {delivery_id}")
    previous = row.status
    row.status = DeliveryStatus.PENDING
    row.attempts = 0
    row.next_attempt_at = utcnow()
    audit.record(
        "event.retry",
        actor,
        None,
        reason="admin retry",
        delivery_id=row.id,
        client_id=row.client_id,
        event_type=row.event_type,
        previous_status=previous,
        last_error=row.last_error,
    )
    db.session.commit()
    return row


def claims_of(row: EventDelivery) -> dict[str, Any]:
    return json.loads(row.payload)
