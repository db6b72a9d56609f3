"""Retention: what no longer serves anyone is deleted, in bounded batches, by `idp worker`.

- refresh tokens: a day after they expire, rotated or not — a rotated token presented again is
  reuse (RFC 9700 §4.14.2), so its row outlives its own validity;
- authorization codes: a day after they expire (a replay revokes what the code issued);
- login sessions: `IDP_RETENTION_SESSION_DAYS` after they ended or expired;
- login events: after `IDP_RETENTION_LOGIN_EVENT_DAYS` (the dashboard charts 14 days);
- event deliveries: `IDP_RETENTION_DELIVERY_DAYS` after delivery; pending and dead rows stay;
- SMS codes, revoked access-token ids, used nonces, the mini-program's mfa_tokens: a day after
  they expire;
- audit events: after `IDP_RETENTION_AUDIT_DAYS` (unset: kept for ever), except merges, undos
  and dismissed suggestions, which are on legal hold.

Each table is emptied of its due rows `IDP_RETENTION_BATCH` rows per transaction (short locks,
bounded WAL), within `IDP_RETENTION_SECONDS` for the whole round; what is left waits for the next
round. Every condition below is backed by an index (tests/maintenance/test_plans.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, delete, or_, select

from idp.accounts.models import LoginEvent, SmsCode
from idp.events.models import DeliveryStatus, EventDelivery
from idp.extensions import db, rows_matched
from idp.identity.models import AuditEvent, LoginSession
from idp.models_base import utcnow
from idp.oidc.models import AuthorizationCode, RefreshToken, RevokedAccessToken, UsedNonce
from idp.second_factor.models import MfaChallenge

log = logging.getLogger(__name__)

# Audit actions kept whatever the retention: what a merge (or its undo) did and why.
LEGAL_HOLD_ACTIONS = (
    "account.merge",
    "account.merged_away",
    "account.unmerge",
    "account.restored",
    "account.unmerge_refused",
    "admin.suggestion_dismiss",
)
EXPIRY_GRACE = timedelta(days=1)


@dataclass
class Purge:
    """One kind of row to purge: its table's key column and the condition that makes it due."""

    name: str
    key: Any
    due: Callable[[datetime], ColumnElement[bool] | None]


@dataclass
class RetentionReport:
    deleted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    complete: bool = True  # False when the time budget ran out first

    def summary(self) -> str:
        parts = [f"{name}={count}" for name, count in self.deleted.items() if count]
        state = "" if self.complete else " (time budget reached; the rest next round)"
        return f"purged {', '.join(parts) or 'nothing'} in {self.seconds:.2f} s{state}"


def _days(name: str) -> timedelta | None:
    value = current_app.config.get(name)
    return None if value in (None, "") else timedelta(days=float(value))


def _older_than(column: Any, setting: str) -> Callable[[datetime], ColumnElement[bool] | None]:
    def due(now: datetime) -> ColumnElement[bool] | None:
        keep = _days(setting)
        return None if keep is None else column < now - keep

    return due


def _expired(column: Any) -> Callable[[datetime], ColumnElement[bool]]:
    return lambda now: column < now - EXPIRY_GRACE


def _ended_sessions(now: datetime) -> ColumnElement[bool] | None:
    keep = _days("IDP_RETENTION_SESSION_DAYS")
    if keep is None:
        return None
    cutoff = now - keep
    return or_(LoginSession.ended_at < cutoff, LoginSession.expires_at < cutoff)


def _delivered(now: datetime) -> ColumnElement[bool] | None:
    keep = _days("IDP_RETENTION_DELIVERY_DAYS")
    if keep is None:
        return None
    return (EventDelivery.status == DeliveryStatus.DELIVERED) & (
        EventDelivery.delivered_at < now - keep
    )


def _audit(now: datetime) -> ColumnElement[bool] | None:
    keep = _days("IDP_RETENTION_AUDIT_DAYS")
    if keep is None:
        return None
    return (AuditEvent.created_at < now - keep) & AuditEvent.action.not_in(LEGAL_HOLD_ACTIONS)


PURGES = (
    Purge("refresh_token", RefreshToken.token_digest, _expired(RefreshToken.expires_at)),
    Purge("authorization_code", AuthorizationCode.code_digest,
          _expired(AuthorizationCode.expires_at)),
    Purge("login_session", LoginSession.id, _ended_sessions),
    Purge("login_event", LoginEvent.id,
          _older_than(LoginEvent.created_at, "IDP_RETENTION_LOGIN_EVENT_DAYS")),
    Purge("event_delivery", EventDelivery.id, _delivered),
    Purge("sms_code", SmsCode.id, _expired(SmsCode.expires_at)),
    Purge("revoked_access_token", RevokedAccessToken.jti, _expired(RevokedAccessToken.expires_at)),
    Purge("used_nonce", UsedNonce.key, _expired(UsedNonce.expires_at)),
    Purge("mfa_challenge", MfaChallenge.token_digest, _expired(MfaChallenge.expires_at)),
    Purge("audit_event", AuditEvent.id, _audit),
)


def purge_expired(now: datetime | None = None) -> RetentionReport:
    """Deletes every due row it can within the time budget; commits after each batch."""
    now = now or utcnow()
    batch = int(current_app.config["IDP_RETENTION_BATCH"])
    deadline = time.monotonic() + float(current_app.config["IDP_RETENTION_SECONDS"])
    started = time.monotonic()
    report = RetentionReport()
    for purge in PURGES:
        condition = purge.due(now)
        if condition is None:
            continue
        report.deleted[purge.name] = 0
        while True:
            if time.monotonic() >= deadline:
                report.complete = False
                break
            deleted = _delete_batch(purge, condition, batch)
            report.deleted[purge.name] += deleted
            if deleted < batch:
                break
        if not report.complete:
            break
    report.seconds = time.monotonic() - started
    log.info("retention: %s", report.summary())
    return report


def _delete_batch(purge: Purge, condition: ColumnElement[bool], batch: int) -> int:
    keys = select(purge.key).where(condition).limit(batch).scalar_subquery()
    deleted = rows_matched(
        delete(purge.key.class_).where(purge.key.in_(keys)).execution_options(
            synchronize_session=False
        )
    )
    db.session.commit()
    return int(deleted or 0)
