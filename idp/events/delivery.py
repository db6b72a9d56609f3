"""Push delivery of queued SETs (RFC 8935), with retries, exponential backoff and a dead letter.

Any number of workers may run: each delivery is claimed with a conditional UPDATE that moves its
`next_attempt_at` forward by a lease, so exactly one worker sends it; if that worker dies, the
lease runs out and another one tries again. Receivers therefore see each SET at least once and
deduplicate by `jti` (RFC 8935 §2.3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import requests
from flask import current_app
from sqlalchemy import CursorResult, select, update

from idp.events.models import DeliveryStatus, EventDelivery
from idp.events.outbox import claims_of
from idp.events.sets import SET_MEDIA_TYPE, sign_set
from idp.extensions import db
from idp.models_base import utcnow
from idp.oidc.backchannel_logout import BACKCHANNEL_LOGOUT, LOGOUT_TOKEN_TYPE
from idp.oidc.models import Client

DEFAULTS = {
    "IDP_EVENT_MAX_ATTEMPTS": 8,
    "IDP_EVENT_RETRY_BASE_SECONDS": 30,
    "IDP_EVENT_RETRY_MAX_SECONDS": 6 * 3600,
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
    """After the n-th failed try: base · 2^(n-1), capped."""
    base = setting("IDP_EVENT_RETRY_BASE_SECONDS")
    cap = setting("IDP_EVENT_RETRY_MAX_SECONDS")
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def deliver_due(
    *, now: datetime | None = None, limit: int = 50, http: requests.Session | None = None
) -> DeliveryReport:
    """Sends every pending delivery whose time has come; commits after each one."""
    now = now or utcnow()
    report = DeliveryReport()
    due = db.session.scalars(
        select(EventDelivery.id)
        .where(
            EventDelivery.status == DeliveryStatus.PENDING,
            EventDelivery.next_attempt_at <= now,
        )
        .order_by(EventDelivery.next_attempt_at, EventDelivery.id)
        .limit(limit)
    ).all()
    db.session.commit()
    session = http or requests.Session()
    try:
        for delivery_id in due:
            if _claim(delivery_id, now):
                outcome = _deliver(delivery_id, now, session)
                setattr(report, outcome, getattr(report, outcome) + 1)
    finally:
        if http is None:
            session.close()
    return report


def _claim(delivery_id: int, now: datetime) -> bool:
    lease = timedelta(seconds=setting("IDP_EVENT_LEASE_SECONDS"))
    result = db.session.execute(
        update(EventDelivery)
        .where(
            EventDelivery.id == delivery_id,
            EventDelivery.status == DeliveryStatus.PENDING,
            EventDelivery.next_attempt_at <= now,
        )
        .values(attempts=EventDelivery.attempts + 1, next_attempt_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return cast(CursorResult[Any], result).rowcount == 1


def _deliver(delivery_id: int, now: datetime, session: requests.Session) -> str:
    row = db.session.get(EventDelivery, delivery_id, populate_existing=True)
    assert row is not None
    client = db.session.get(Client, row.client_id)
    error = None
    if row.event_type == BACKCHANNEL_LOGOUT:
        if client is None or not client.backchannel_logout_uri:
            error = "the client no longer has a back-channel logout URI"
        else:
            token = sign_set(claims_of(row), token_type=LOGOUT_TOKEN_TYPE)
            error = _post_logout_token(client.backchannel_logout_uri, token, session)
    elif client is None or not client.events_uri:
        error = "the client no longer has an events URI"
    else:
        error = _post(client.events_uri, sign_set(claims_of(row)), session)
    if error is None:
        row.status = DeliveryStatus.DELIVERED
        row.delivered_at = utcnow()
        row.last_error = None
        outcome = "delivered"
    elif row.attempts >= setting("IDP_EVENT_MAX_ATTEMPTS"):
        row.status = DeliveryStatus.DEAD
        row.last_error = error
        outcome = "dead"
    else:
        row.next_attempt_at = now + retry_delay(row.attempts)
        row.last_error = error
        outcome = "retrying"
    db.session.commit()
    return outcome


def _post(url: str, token: str, session: requests.Session) -> str | None:
    """None when the receiver accepted the SET (RFC 8935 §2.2: 202), else what went wrong."""
    try:
        response = session.post(
            url,
            data=token.encode("ascii"),
            headers={"Content-Type": SET_MEDIA_TYPE, "Accept": "application/json"},
            timeout=setting("IDP_EVENT_TIMEOUT_SECONDS"),
            allow_redirects=False,
        )
    except requests.RequestException as failure:
        return f"{type(failure).__name__}: could not reach the receiver"[:500]
    if response.status_code == 202:
        return None
    if 200 <= response.status_code < 300:
        return None  # a receiver that says 200/204 has the SET all the same
    return f"HTTP {response.status_code}{_rfc8935_error(response)}"[:500]


def _post_logout_token(url: str, token: str, session: requests.Session) -> str | None:
    """Back-Channel Logout 1.0 §2.5: a form POST of `logout_token`; 200 (or 204) is success."""
    try:
        response = session.post(
            url,
            data={"logout_token": token},
            timeout=setting("IDP_EVENT_TIMEOUT_SECONDS"),
            allow_redirects=False,
        )
    except requests.RequestException as failure:
        return f"{type(failure).__name__}: could not reach the receiver"[:500]
    if response.status_code in (200, 204):
        return None
    return f"HTTP {response.status_code}"


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
