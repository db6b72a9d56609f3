"""Delivery of queued events: RFC 8935 push (and back-channel logout tokens) to relying parties,
and publishing to RabbitMQ — retried with capped exponential backoff for as long as the
operator's ceiling (`IDP_EVENT_RETRY_CEILING_DAYS`, days), then dead until an admin retries it.

Any number of workers may run: each delivery is claimed with a conditional UPDATE that moves its
`next_attempt_at` forward by a lease, so exactly one worker sends it; if that worker dies, the
lease runs out and another one tries again. Receivers therefore see each SET at least once and
deduplicate by `jti` (RFC 8935 §2.3; the AMQP `message_id`).

Order: a delivery waits while an earlier one to the same receiver about the same account is
undelivered — pending (leased or waiting for a retry) or dead — so each receiver sees an
account's events in the order they happened, also across an outage longer than the ceiling and
an admin's retry. A dead delivery is an alert (`idp_event_outbox_rows{state="dead"}`, the
`held` rows behind it, and an ERROR log line).

An outage is survived by time, not by a count of tries: a delivery is dead only once it has
been failing for longer than the ceiling, whatever the backoff made of that time. Within a
round, a receiver that failed (the broker, a relying party's URI) is not tried again: the rest
of its claims are given back untouched, so a long outage costs one try per receiver per round.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import current_app
from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased

from idp.events.amqp import AmqpPublisher, AmqpUnavailable
from idp.events.backchannel_logout import BACKCHANNEL_LOGOUT, LOGOUT_TOKEN_TYPE
from idp.events.models import DeliveryStatus, EventDelivery, Sink, is_undelivered
from idp.events.outbox import claims_of
from idp.events.sets import SET_MEDIA_TYPE, sign_set
from idp.extensions import db
from idp.models_base import utcnow
from idp.observability import metrics
from idp.oidc.models import Client
from idp.security.outbound import OutboundRefused, guarded_session, parse_networks

log = logging.getLogger(__name__)

DEFAULTS = {
    # How long a delivery is retried before it is dead: an outage of a long weekend and more.
    "IDP_EVENT_RETRY_CEILING_DAYS": 7,
    "IDP_EVENT_RETRY_BASE_SECONDS": 30,
    # The longest pause between two tries: the most a line waits once its receiver is back.
    "IDP_EVENT_RETRY_MAX_SECONDS": 900,
    "IDP_EVENT_TIMEOUT_SECONDS": 5.0,
    # How long a claimed delivery is reserved for the worker that claimed it.
    "IDP_EVENT_LEASE_SECONDS": 60,
}


def setting(name: str) -> float:
    return float(current_app.config.get(name, DEFAULTS[name]))


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.dead


def retry_delay(attempts: int) -> timedelta:
    """After the n-th failed try: base · 2^(n-1), capped (days of tries make n large)."""
    base = setting("IDP_EVENT_RETRY_BASE_SECONDS")
    cap = setting("IDP_EVENT_RETRY_MAX_SECONDS")
    return timedelta(seconds=min(base * 2 ** min(max(attempts - 1, 0), 40), cap))


def retry_ceiling() -> timedelta:
    """How long a delivery may keep failing before it is dead."""
    return timedelta(days=setting("IDP_EVENT_RETRY_CEILING_DAYS"))


def outbound_session() -> requests.Session:
    """HTTP to relying parties, only to addresses the operator allows (idp.security.outbound)."""
    return guarded_session(parse_networks(current_app.config.get("IDP_OUTBOUND_ALLOWED_NETWORKS")))


def deliver_due(
    *,
    now: datetime | None = None,
    limit: int = 50,
    http: requests.Session | None = None,
    amqp: AmqpPublisher | None = None,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Sends up to `limit` pending deliveries whose time has come, in order per account and
    receiver. Each pass claims what is due in one statement, then records each outcome in its
    own commit (a worker killed mid-batch re-sends at most what it had not recorded). When a
    receiver fails (the broker is down, a relying party does not answer), the round sends it
    nothing more and gives its other claims back (they wait for their turn, in order). Once
    `stop` is set, the round ends after the delivery in hand, giving back the rest."""
    now = now or utcnow()
    report = DeliveryReport()
    session = http or outbound_session()
    publisher = amqp
    unavailable: set[Receiver] = set()
    try:
        while report.attempted < limit and not (stop and stop.is_set()):
            due = {
                delivery_id: receiver
                for delivery_id, receiver in _due(now, limit - report.attempted)
                if receiver not in unavailable
            }
            claimed = _claim_all(list(due), now)
            if not claimed:
                break
            unsent: list[int] = []
            for delivery_id in claimed:
                receiver = due[delivery_id]
                if (stop and stop.is_set()) or receiver in unavailable:
                    unsent.append(delivery_id)
                    continue
                if receiver[0] == Sink.AMQP and publisher is None:
                    publisher = AmqpPublisher.from_config(current_app.config)
                outcome = _deliver(delivery_id, now, session, publisher)
                setattr(report, outcome, getattr(report, outcome) + 1)
                if outcome != "delivered":
                    unavailable.add(receiver)
            _release(unsent)
    finally:
        if http is None:
            session.close()
        if amqp is None and publisher is not None:
            publisher.close()
    log.debug("event delivery round: %s delivered, %s retrying, %s dead",
              report.delivered, report.retrying, report.dead)
    return report


# (sink, client_id): the broker, or one relying party.
Receiver = tuple[str, str | None]


def waits_in_line(row: type[EventDelivery] | Any) -> Any:
    """True while an earlier event of the same account to the same receiver is undelivered
    (pending or dead). On ix_event_delivery_line: one index probe per row asked about."""
    earlier = aliased(EventDelivery)
    return exists().where(
        earlier.subject == row.subject,
        earlier.sink == row.sink,
        earlier.client_id.is_not_distinct_from(row.client_id),
        earlier.id < row.id,
        is_undelivered(earlier.status),
    )


def _due(now: datetime, limit: int) -> list[tuple[int, Receiver]]:
    waits_for_earlier = waits_in_line(EventDelivery)
    rows = db.session.execute(
        select(EventDelivery.id, EventDelivery.sink, EventDelivery.client_id)
        .where(
            EventDelivery.status == DeliveryStatus.PENDING,
            EventDelivery.next_attempt_at <= now,
            ~waits_for_earlier,
        )
        .order_by(EventDelivery.id)
        .limit(limit)
    ).all()
    db.session.commit()
    return [(row[0], (row[1], row[2])) for row in rows]


def _claim_all(delivery_ids: list[int], now: datetime) -> list[int]:
    """Claims those still due in one statement and one commit; returns them in order. Another
    worker's claim of the same rows made them not due: each row has exactly one claimant."""
    if not delivery_ids:
        return []
    lease = timedelta(seconds=setting("IDP_EVENT_LEASE_SECONDS"))
    claimed = db.session.scalars(
        update(EventDelivery)
        .where(
            EventDelivery.id.in_(delivery_ids),
            EventDelivery.status == DeliveryStatus.PENDING,
            EventDelivery.next_attempt_at <= now,
        )
        .values(attempts=EventDelivery.attempts + 1, next_attempt_at=now + lease)
        .returning(EventDelivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(claimed)


def _claim(delivery_id: int, now: datetime) -> bool:
    return _claim_all([delivery_id], now) == [delivery_id]


def _release(delivery_ids: list[int]) -> None:
    """Gives back claimed deliveries this round will not send (stopping, broker down), as
    they were: due again at once, the try not counted."""
    if not delivery_ids:
        return
    db.session.execute(
        update(EventDelivery)
        .where(EventDelivery.id.in_(delivery_ids), EventDelivery.status == DeliveryStatus.PENDING)
        .values(attempts=EventDelivery.attempts - 1, next_attempt_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _deliver(
    delivery_id: int, now: datetime, session: requests.Session, publisher: AmqpPublisher | None
) -> str:
    row = db.session.get(EventDelivery, delivery_id, populate_existing=True)
    assert row is not None
    if row.attempts > 1:
        log.info(
            "redelivering event %s (%s to %s, attempt %s): %s",
            row.id, row.event_type, row.client_id or row.sink, row.attempts,
            row.last_error or "the previous attempt did not finish (its lease expired)",
        )
    if row.sink == Sink.AMQP:
        assert publisher is not None
        error = _publish(row, publisher)
    else:
        error = _push(row, session)
    if error is None:
        row.status = DeliveryStatus.DELIVERED
        row.delivered_at = utcnow()
        row.last_error = None
        outcome = "delivered"
        metrics.observe_event_delivered(
            row.sink, (row.delivered_at - row.created_at).total_seconds()
        )
    else:
        row.last_error = error
        row.failing_since = row.failing_since or now
        if now - row.failing_since >= retry_ceiling():
            row.status = DeliveryStatus.DEAD
            outcome = "dead"
            _alert_dead(row)
        else:
            row.next_attempt_at = now + retry_delay(row.attempts)
            outcome = "retrying"
    metrics.count_event_delivery(row.sink, outcome)
    db.session.commit()
    return outcome


def _alert_dead(row: EventDelivery) -> None:
    """The operator's alert, beside `idp_event_outbox_rows{state="dead"}` and the rows it
    holds (`state="held"`): nothing more goes to this receiver about this account until an
    admin retries the delivery."""
    log.error(
        "event delivery %s (%s to %s) is dead: failing since %s, longer than "
        "IDP_EVENT_RETRY_CEILING_DAYS (%s), after %s tries: %s. Later events of this account "
        "to this receiver wait behind it until an admin retries it (Admin > Event deliveries)",
        row.id, row.event_type, row.client_id or row.sink,
        row.failing_since.isoformat() if row.failing_since else "?",
        setting("IDP_EVENT_RETRY_CEILING_DAYS"), row.attempts, row.last_error,
    )


def _push(row: EventDelivery, session: requests.Session) -> str | None:
    client = db.session.get(Client, row.client_id) if row.client_id else None
    if row.event_type == BACKCHANNEL_LOGOUT:
        if client is None or not client.backchannel_logout_uri:
            return "the client no longer has a back-channel logout URI"
        token = sign_set(claims_of(row), token_type=LOGOUT_TOKEN_TYPE)
        return _post_logout_token(client.backchannel_logout_uri, token, session)
    if client is None or not client.events_uri:
        return "the client no longer has an events URI"
    return _post(client.events_uri, sign_set(claims_of(row)), session)


def _publish(row: EventDelivery, publisher: AmqpPublisher) -> str | None:
    claims = claims_of(row)
    if str(current_app.config.get("IDP_AMQP_BODY") or "set") == "claims":
        body, content_type = json.dumps(claims).encode(), "application/json"
    else:
        body, content_type = sign_set(claims).encode("ascii"), SET_MEDIA_TYPE
    try:
        publisher.publish(row.event_type, body, str(claims["jti"]), content_type)
    except AmqpUnavailable as failure:
        log.warning("RabbitMQ unavailable (%s): events wait in the outbox", failure)
        return str(failure)[:500]
    return None


def _post(url: str, token: str, session: requests.Session) -> str | None:
    """None when the receiver accepted the SET (RFC 8935 §2.2: 202), else what went wrong."""
    response = _posted(
        url, session, data=token.encode("ascii"),
        headers={"Content-Type": SET_MEDIA_TYPE, "Accept": "application/json"},
    )
    if isinstance(response, str):
        return response
    if response.status_code == 202:
        return None
    if 200 <= response.status_code < 300:
        return None  # a receiver that says 200/204 has the SET all the same
    return f"HTTP {response.status_code}{_rfc8935_error(response)}"[:500]


def _post_logout_token(url: str, token: str, session: requests.Session) -> str | None:
    """Back-Channel Logout 1.0 §2.5: a form POST of `logout_token`; 200 (or 204) is success."""
    response = _posted(url, session, data={"logout_token": token})
    if isinstance(response, str):
        return response
    if response.status_code in (200, 204):
        return None
    return f"HTTP {response.status_code}"


def _posted(url: str, session: requests.Session, **request: Any) -> requests.Response | str:
    """The receiver's answer to a POST (no redirect followed), or what kept it from reaching
    the receiver."""
    try:
        return session.post(
            url, timeout=setting("IDP_EVENT_TIMEOUT_SECONDS"), allow_redirects=False, **request
        )
    except OutboundRefused as refusal:
        return f"refused: {refusal}"[:500]
    except requests.RequestException as failure:
        return f"{type(failure).__name__}: could not reach the receiver"[:500]


def _rfc8935_error(response: requests.Response) -> str:
    """RFC 8935 §2.4: a 400 may carry {"err": code, "description": text}."""
    try:
        body = json.loads(response.content[:4096] or b"null")
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("err"), str):
        description = body.get("description")
        return f": {body['err']}" + (f" ({description})" if isinstance(description, str) else "")
    return ""
