"""The audit trail for the `auditor`: newest first, filtered by actor, account, action and time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import render_template, request
from sqlalchemy import func, select

from idp.admin.blueprint import bp
from idp.admin.views.helpers import page_number
from idp.extensions import db
from idp.identity.models import AuditEvent

PER_PAGE = 50


@bp.get("/audit")
def audit_trail() -> Any:
    filters = {name: request.args.get(name, "").strip()[:80]
               for name in ("actor", "account", "action", "since", "until")}
    query = select(AuditEvent)
    if filters["actor"]:
        actor_type, _, actor_id = filters["actor"].partition(":")
        query = query.where(AuditEvent.actor_id == (actor_id or actor_type))
        if actor_id:
            query = query.where(AuditEvent.actor_type == actor_type)
    if filters["account"]:
        query = query.where(AuditEvent.account_id == filters["account"].lower())
    if filters["action"]:
        query = query.where(AuditEvent.action == filters["action"])
    since, until = _moment(filters["since"]), _moment(filters["until"])
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    if until is not None:
        query = query.where(AuditEvent.created_at <= until)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = page_number()
    events = db.session.scalars(
        query.order_by(AuditEvent.id.desc()).offset((page - 1) * PER_PAGE).limit(PER_PAGE)
    ).all()
    return render_template("admin/audit.html", events=events, filters=filters, page=page,
                           pages=max(1, -(-total // PER_PAGE)))


def _moment(text: str) -> datetime | None:
    """`2026-12-06` or `2026-12-06T09:30`, read as UTC; anything else is no filter."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
