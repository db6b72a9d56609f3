"""Suggested merges: the identity report, less what an admin dismissed.

A dismissal is an audit event (`admin.suggestion_dismiss`) naming the suggestion's key, so the
audit log is the one record of it; a suggestion's key includes its accounts, so when another
account joins the group the suggestion comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import AuditEvent
from idp.identity.report import build_report

DISMISS_ACTION = "admin.suggestion_dismiss"


@dataclass
class Suggestion:
    key: str
    reason: str  # shared_unverified_phone, shared_verified_email, no_way_to_log_in
    value: str | None
    account_ids: list[str]
    verified_on: list[str]


def suggestions() -> list[Suggestion]:
    report = build_report()
    found = [
        Suggestion(_key(reason, group.value, group.account_ids), reason, group.value,
                   group.account_ids, group.verified_on)
        for reason, groups in (
            ("shared_unverified_phone", report.shared_unverified_phones),
            ("shared_verified_email", report.shared_verified_emails),
        )
        for group in groups
    ]
    found += [
        Suggestion(_key("no_way_to_log_in", None, [account_id]), "no_way_to_log_in", None,
                   [account_id], [])
        for account_id in report.no_way_to_log_in
    ]
    dismissed = dismissed_keys()
    return [suggestion for suggestion in found if suggestion.key not in dismissed]


def dismiss(key: str, actor: Actor) -> bool:
    """False when there is no such open suggestion."""
    match = next((s for s in suggestions() if s.key == key), None)
    if match is None:
        return False
    for account_id in match.account_ids:
        audit.record(DISMISS_ACTION, actor, account_id, reason=match.reason, key=key)
    db.session.commit()
    return True


def dismissed_keys() -> set[str]:
    rows = db.session.scalars(select(AuditEvent.details).where(AuditEvent.action == DISMISS_ACTION))
    return {str(details.get("key")) for details in rows if isinstance(details, dict)}


def _key(reason: str, value: str | None, account_ids: list[str]) -> str:
    return "|".join([reason, value or "", *sorted(account_ids)])
