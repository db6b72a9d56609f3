"""The append-only audit trail: every link, unlink, merge, undo, creation and admin action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import g, has_app_context

from idp.extensions import db
from idp.identity.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who did it: the user themselves, an admin, a rule of the engine, or the system."""

    type: str
    id: str | None = None

    @classmethod
    def user(cls, account_id: str) -> Actor:
        return cls("user", account_id)

    @classmethod
    def admin(cls, account_id: str) -> Actor:
        return cls("admin", account_id)

    @classmethod
    def rule(cls, name: str) -> Actor:
        return cls("rule", name)

    @classmethod
    def system(cls, name: str = "idp") -> Actor:
        return cls("system", name)

    def __str__(self) -> str:
        return f"{self.type}:{self.id}" if self.id else self.type


def record(
    action: str,
    actor: Actor,
    account_id: str | None,
    reason: str | None = None,
    **details: Any,
) -> AuditEvent:
    """Adds the event to the current transaction: it lands if and only if the change does."""
    event = AuditEvent(
        action=action,
        account_id=account_id,
        actor_type=actor.type,
        actor_id=actor.id,
        reason=reason,
        details=details,
        request_id=g.get("request_id") if has_app_context() else None,  # hot paths too
    )
    db.session.add(event)
    return event
