"""The transactional outbox: events are written in the transaction of the change they report,
so a merge and its events land together or not at all. Delivery happens later (`delivery.py`).

Each account event becomes one row per receiver:
- per relying party with an events URI that subscribed to the event type (`Client.event_types`)
  and holds or held a grant for one of the accounts concerned (a consent, a refresh token — even
  revoked — or an authorization code): an RP hears only of users it knows;
- one for the RabbitMQ exchange when `IDP_AMQP_URL` is set: the company's own services hear of
  everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flask import current_app, g, has_app_context, has_request_context, request
from sqlalchemy import select, union

from idp.events.models import DeliveryStatus, EventDelivery, Sink
from idp.events.sets import (
    DEFAULT_SUBSCRIPTION,
    PROFILE_UPDATED,
    account_event,
    event_type_uri,
    lifecycle_event,
    set_claims,
)
from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.models_base import utcnow
from idp.oidc.models import AuthorizationCode, Client, Consent, RefreshToken

DEFAULT_AMQP_EXCHANGE = "idp.events"
_PENDING_KEY = "idp.events.pending"


class DeliveryNotRetryable(LookupError):
    """No such delivery, or it was delivered already."""


def subscribers_of(event_type: str, account_ids: Iterable[str]) -> list[Client]:
    """The relying parties to push this event to (see the module docstring)."""
    ids = sorted(set(account_ids))
    granted = union(
        select(Consent.client_id).where(Consent.account_id.in_(ids)),
        select(RefreshToken.client_id).where(RefreshToken.account_id.in_(ids)),
        select(AuthorizationCode.client_id).where(AuthorizationCode.account_id.in_(ids)),
    ).subquery()
    candidates = db.session.scalars(
        select(Client)
        .where(
            Client.events_uri.is_not(None),
            Client.events_uri != "",
            Client.client_id.in_(select(granted.c.client_id)),
        )
        .order_by(Client.client_id)
    )
    return [client for client in candidates if event_type in subscription_of(client)]


def _subscribed_audience(event_type: str, client_id: str) -> list[Client]:
    """The one client an event is about, when it has an events URI and chose this type."""
    client = db.session.get(Client, client_id)
    if client is None or not client.events_uri or event_type not in subscription_of(client):
        return []
    return [client]


def subscription_of(client: Client) -> tuple[str, ...]:
    return tuple(client.event_types) if client.event_types is not None else DEFAULT_SUBSCRIPTION


def amqp_exchange() -> str | None:
    """The exchange account events are published to, or None when AMQP is not configured."""
    if not current_app.config.get("IDP_AMQP_URL"):
        return None
    return str(current_app.config.get("IDP_AMQP_EXCHANGE") or DEFAULT_AMQP_EXCHANGE)


def channel_of(actor: Actor) -> str:
    """Through which door the change came: the admin UI, the management API, or the blueprint
    of the request (`accounts`, `oidc`, `wechat_login` …); `system` outside a request."""
    if actor.type == "admin":
        return "admin"
    if actor.type == "client":
        return "api"
    if has_request_context() and request.blueprint:
        return request.blueprint.split(".")[0]
    if has_app_context() and "hot_request" in g:
        return "oidc"  # the protocol's endpoints served before Flask (idp/oidc/hot_paths)
    return "system"


def emit(
    event_type: str,
    sub: str,
    actor: Actor,
    *,
    channel: str | None = None,
    details: dict[str, Any] | None = None,
    accounts: Iterable[str] = (),
    audience: str | None = None,
) -> list[EventDelivery]:
    """Queues an account event in the caller's transaction, one row per receiver. `accounts`:
    further accounts the event concerns (a merge's survivor), whose RPs hear of it too;
    `audience`: the one relying party the event concerns, the only one told (if subscribed)."""
    events = lifecycle_event(
        event_type, sub, actor=str(actor), channel=channel or channel_of(actor), details=details
    )
    return _enqueue(event_type, sub, events, [sub, *accounts], audience)


def emit_profile_update(sub: str, actor: Actor, claims: Iterable[str]) -> list[EventDelivery]:
    """`profile-updated` naming the claims that changed. Several changes to one account in one
    transaction make one event, naming every claim."""
    names = set(claims)
    pending = _pending_in_transaction()
    key = (PROFILE_UPDATED, sub)
    if key in pending:
        for row in pending[key]:
            payload = json.loads(row.payload)
            body = payload["events"][event_type_uri(PROFILE_UPDATED)]
            body["claims"] = sorted(names | set(body["claims"]))
            row.payload = json.dumps(payload, sort_keys=True)
        return list(pending[key])
    rows = emit(PROFILE_UPDATED, sub, actor, details={"claims": sorted(names)})
    _pending_in_transaction()[key] = rows  # emit's queries began the transaction if need be
    return rows


def enqueue_account_event(
    event_type: str, merged_sub: str, surviving_sub: str, actor: Actor | None = None
) -> list[EventDelivery]:
    """A merge or its undo, in the caller's transaction: RPs of either account hear of it."""
    who = actor or Actor.system()
    events = account_event(
        event_type, merged_sub, surviving_sub, actor=str(who), channel=channel_of(who)
    )
    return _enqueue(event_type, merged_sub, events, [merged_sub, surviving_sub])


def _enqueue(
    event_type: str, sub: str, events: dict[str, Any], account_ids: list[str],
    audience: str | None = None,
) -> list[EventDelivery]:
    clients = (subscribers_of(event_type, account_ids) if audience is None
               else _subscribed_audience(event_type, audience))
    receivers: list[tuple[str, str | None, str]] = [
        (Sink.PUSH, client.client_id, client.client_id) for client in clients
    ]
    exchange = amqp_exchange()
    if exchange is not None:
        receivers.append((Sink.AMQP, None, exchange))
    rows = []
    now = utcnow()
    for sink, client_id, audience in receivers:
        row = EventDelivery(
            sink=sink,
            client_id=client_id,
            subject=sub,
            event_type=event_type,
            payload=json.dumps(set_claims(audience, events), sort_keys=True),
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        db.session.add(row)
        rows.append(row)
    return rows


def _pending_in_transaction() -> dict[tuple[str, str], list[EventDelivery]]:
    """Rows queued in the current transaction (and only in it), by (event type, sub)."""
    transaction = db.session().get_transaction()
    held = db.session.info.get(_PENDING_KEY)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        db.session.info[_PENDING_KEY] = held
    return held[1]


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
    """An admin sends a dead (or still pending) delivery again now, with a fresh ceiling of
    tries. It keeps its place in its line: it leaves only after the account's earlier events to
    the same receiver (idp/events/delivery.py), and later ones still wait for it."""
    row = db.session.get(EventDelivery, delivery_id)
    if row is None or row.status == DeliveryStatus.DELIVERED:
        raise DeliveryNotRetryable(f"no undelivered event delivery {delivery_id}")
    previous = row.status
    row.status = DeliveryStatus.PENDING
    row.attempts = 0
    row.failing_since = None
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
