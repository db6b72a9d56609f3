"""The person's own copy of their data (PIPL Art. 45): one JSON document of the profile, the ways
in, the apps that received claims (which, and when), the sessions, 90 days of sign-ins and the
account events sent about the account.

What proves or unlocks something is never in it: no password hash, no TOTP secret, no passkey
key or credential id, no recovery code, no WeChat session_key, no session id, no token. The
records of accounts merged into this one (its aliases) are the same person's and are included;
no other account's row is ever read (every query is bounded by `merged_account_ids`).

`build_export` is the single place that gathers it; the account centre's download and the
mini-program's API (`api.py`) both answer with it, after re-authentication, a shared rate limit
(`EXPORTS`) and an audit record (`record_export`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from idp.accounts.models import LoginEvent, TermsAcceptance
from idp.events.models import EventDelivery, Sink
from idp.extensions import db
from idp.identity import audit
from idp.identity.accounts import merged_account_ids
from idp.identity.audit import Actor
from idp.identity.claims import profile_values
from idp.identity.models import Account, Identity, IdentityKind, LoginSession, ProfileClaim
from idp.models_base import utcnow
from idp.oidc.apps import connected_apps
from idp.oidc.models import Client
from idp.oidc.releases import released_to
from idp.second_factor.models import RecoveryCode, SecondFactor
from idp.security.throttle import Throttle

FORMAT = "urn:idp:personal-data-export:1"
SIGN_IN_DAYS = 90
# Every process counts in the one shared store (Redis when IDP_REDIS_URL is set).
EXPORTS = Throttle("data-export", ("3/hour", "10/day"), moving=True)
# An identity's value is shown unless it is only a random handle of a secret.
VALUELESS_KINDS = frozenset({IdentityKind.PASSWORD})


def build_export(account: Account, now: datetime | None = None) -> dict[str, Any]:
    """The document (see the module docstring); plain JSON types only."""
    now = now or utcnow()
    ids = merged_account_ids(account)
    return {
        "format": FORMAT,
        "generated_at": _time(now),
        "sub": account.id,
        "merged_subs": ids[1:],
        "profile": _profile(account),
        "ways_in": _ways_in(account),
        "apps": _apps(account),
        "sessions": _sessions(ids, now),
        "sign_ins": _sign_ins(ids, now),
        "events": _events(ids),
        "terms_accepted": _terms(ids),
    }


def export_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True)


def export_filename(account: Account, now: datetime) -> str:
    return f"my-data-{account.id[:8]}-{now:%Y%m%d}.json"


def record_export(account: Account, channel: str) -> None:
    """The audit record of a copy handed out (who, through which door); the caller commits."""
    audit.record("account.data_export", Actor.user(account.id), account.id, reason=channel)


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _profile(account: Account) -> dict[str, Any]:
    stored = db.session.scalars(
        select(ProfileClaim).where(ProfileClaim.account_id == account.id)
        .order_by(ProfileClaim.name, ProfileClaim.source)
    ).all()
    return {
        "sub": account.id,
        "status": account.status,
        "created_at": _time(account.created_at),
        "created_via": account.created_via,
        "updated_at": _time(account.profile_updated_at),
        "deletion_due_at": _time(account.deletion_due_at),
        "claims": {name: value for name, (value, _source) in profile_values(account).items()},
        "claim_sources": [
            {"claim": row.name, "source": row.source, "value": row.value,
             "updated_at": _time(row.updated_at)}
            for row in stored
        ],
    }


def _ways_in(account: Account) -> dict[str, Any]:
    identities = db.session.scalars(
        select(Identity).where(Identity.account_id == account.id).order_by(Identity.id)
    ).all()
    factors = db.session.scalars(
        select(SecondFactor).where(SecondFactor.account_id == account.id)
        .order_by(SecondFactor.id)
    ).all()
    codes = db.session.scalars(
        select(RecoveryCode.used_at).where(RecoveryCode.account_id == account.id)
    ).all()
    return {
        "identities": [_identity(row) for row in identities],
        "second_factors": [
            {"kind": row.kind, "label": row.label, "device_type": row.device_type,
             "created_at": _time(row.created_at), "last_used_at": _time(row.last_used_at)}
            for row in factors
        ],
        "recovery_codes": {"issued": len(codes),
                           "unused": sum(1 for used in codes if used is None)},
    }


def _identity(row: Identity) -> dict[str, Any]:
    found: dict[str, Any] = {
        "kind": row.kind, "verified": row.verified, "verified_by": row.verified_by,
        "created_at": _time(row.created_at), "last_used_at": _time(row.last_used_at),
    }
    if row.kind not in VALUELESS_KINDS:
        found["value"] = row.value
    if row.namespace:
        found["wechat_appid"] = row.namespace
    return found


def _apps(account: Account) -> list[dict[str, Any]]:
    """Each client that received claims or may still use the account."""
    connected = {app.client.client_id: app for app in connected_apps(account)}
    received = {found.client.client_id: found for found in released_to(account)}
    clients: dict[str, Client] = {cid: app.client for cid, app in connected.items()}
    clients.update({cid: found.client for cid, found in received.items()})
    apps = []
    for client_id, client in sorted(clients.items(), key=lambda item: item[1].name.lower()):
        app, releases = connected.get(client_id), received.get(client_id)
        apps.append({
            "client_id": client_id,
            "name": client.name,
            "connected": app is not None,
            "scopes": sorted(app.scopes) if app else [],
            "consented_at": _time(app.granted_at) if app else None,
            "live_refresh_tokens": app.live_tokens if app else 0,
            "received": [
                {"scope": row.scope, "claims": list(row.claims or []),
                 "first_received_at": _time(row.first_released_at),
                 "last_received_at": _time(row.last_released_at)}
                for row in (releases.releases if releases else [])
            ],
        })
    return apps


def _sessions(ids: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    """Sessions still open, and those begun in the last 90 days."""
    since = now - timedelta(days=SIGN_IN_DAYS)
    rows = db.session.scalars(
        select(LoginSession).where(
            LoginSession.account_id.in_(ids),
            (LoginSession.created_at >= since)
            | (LoginSession.ended_at.is_(None) & (LoginSession.expires_at > now)),
        ).order_by(LoginSession.created_at.desc())
    ).all()
    return [
        {"started_at": _time(row.created_at), "signed_in_at": _time(row.auth_time),
         "channel": row.channel, "methods": row.amr.split(), "user_agent": row.user_agent,
         "ip_address": row.ip_address, "expires_at": _time(row.expires_at),
         "ended_at": _time(row.ended_at)}
        for row in rows if not row.second_factor_pending
    ]


def _sign_ins(ids: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    since = now - timedelta(days=SIGN_IN_DAYS)
    rows = db.session.execute(
        select(LoginEvent, Client.name)
        .outerjoin(Client, Client.client_id == LoginEvent.client_id)
        .where(LoginEvent.account_id.in_(ids), LoginEvent.created_at >= since)
        .order_by(LoginEvent.created_at.desc(), LoginEvent.id.desc())
    ).all()
    return [
        {"at": _time(row.created_at), "channel": row.channel, "client_id": row.client_id,
         "client_name": name}
        for row, name in rows
    ]


def _events(ids: Sequence[str]) -> list[dict[str, Any]]:
    """The account events queued about the account (and its aliases), to whom, and whether
    delivered: the SET's event body (names only, never a value), not its signature."""
    rows = db.session.execute(
        select(EventDelivery, Client.name)
        .outerjoin(Client, Client.client_id == EventDelivery.client_id)
        .where(EventDelivery.subject.in_(ids))
        .order_by(EventDelivery.created_at.desc(), EventDelivery.id.desc())
    ).all()
    return [
        {"type": row.event_type,
         "to": (name or row.client_id) if row.sink == Sink.PUSH else "amqp",
         "client_id": row.client_id, "queued_at": _time(row.created_at),
         "status": row.status, "delivered_at": _time(row.delivered_at),
         "event": _event_body(row.payload)}
        for row, name in rows
    ]


def _event_body(payload: str) -> dict[str, Any]:
    try:
        events = json.loads(payload).get("events", {})
    except (ValueError, AttributeError):
        return {}
    return events if isinstance(events, dict) else {}


def _terms(ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = db.session.scalars(
        select(TermsAcceptance).where(TermsAcceptance.account_id.in_(ids))
        .order_by(TermsAcceptance.accepted_at.desc())
    ).all()
    return [{"version": row.version, "accepted_at": _time(row.accepted_at),
             "channel": row.channel} for row in rows]
