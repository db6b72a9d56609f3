"""Suggested merges: the stored reconciliation run (`maintenance/reconciliation.py`), less what
an admin dismissed, a page at a time.

A dismissal is an audit event (`admin.suggestion_dismiss`) naming the suggestion's key, so the
audit log is the one record of it; a suggestion's key includes its accounts, so when another
account joins the group the suggestion comes back (in the next run). A finding whose accounts
are no longer all active (merged or disabled since the run) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.lookup import value_behind
from idp.identity.models import (
    Account,
    AccountStatus,
    AuditEvent,
    ReconciliationFinding,
    ReconciliationRun,
)
from idp.maintenance.reconciliation import (
    REASONS,
    SHARED_UNVERIFIED_PHONE,
    SHARED_VERIFIED_EMAIL,
    latest_run,
    run_reconciliation,
    stored_findings,
)

DISMISS_ACTION = "admin.suggestion_dismiss"
PER_PAGE = 20


@dataclass
class Suggestion:
    key: str
    reason: str  # shared_unverified_phone, shared_verified_email, no_way_to_log_in
    value: str | None
    account_ids: list[str]
    verified_on: list[str]


@dataclass
class SuggestionPage:
    run: ReconciliationRun | None
    suggestions: list[Suggestion] = field(default_factory=list)
    next_after: int | None = None  # the keyset cursor of the next page


def suggestions(after: int = 0, per_page: int = PER_PAGE) -> SuggestionPage:
    """One page of open suggestions from the latest run (a first run is made when none is)."""
    run = latest_run() or run_reconciliation(trigger="admin")
    dismissed = dismissed_keys()
    page = SuggestionPage(run)
    last_shown = after
    for finding in stored_findings(run.id, after_id=after):
        suggestion = _suggestion(finding)
        if suggestion.key in dismissed or not _still_current(suggestion):
            continue
        if len(page.suggestions) == per_page:
            page.next_after = last_shown
            break
        page.suggestions.append(suggestion)
        last_shown = finding.id
    return page


def dismiss(key: str, actor: Actor) -> bool:
    """False when the latest run holds no such open suggestion."""
    reason, _, rest = key.partition("|")
    value, _, _ = rest.partition("|")
    run = latest_run()
    if run is None or reason not in REASONS:
        return False
    candidates = db.session.scalars(
        select(ReconciliationFinding).where(
            ReconciliationFinding.run_id == run.id,
            ReconciliationFinding.reason == reason,
            ReconciliationFinding.value.is_(None) if not value
            else ReconciliationFinding.value == value,
        )
    )
    match = next((s for s in map(_suggestion, candidates) if s.key == key), None)
    if match is None or key in dismissed_keys():
        return False
    for account_id in match.account_ids:
        audit.record(DISMISS_ACTION, actor, account_id, reason=match.reason, key=key)
    db.session.commit()
    return True


def dismissed_keys() -> set[str]:
    rows = db.session.scalars(select(AuditEvent.details).where(AuditEvent.action == DISMISS_ACTION))
    return {str(details.get("key")) for details in rows if isinstance(details, dict)}


SHARED_KINDS = {SHARED_UNVERIFIED_PHONE: "phone", SHARED_VERIFIED_EMAIL: "email"}


def _suggestion(finding: ReconciliationFinding) -> Suggestion:
    """The key names the stored lookup key; the suggestion shows the value behind it."""
    kind = SHARED_KINDS.get(finding.reason)
    shown = value_behind(kind, finding.value) if kind else finding.value
    return Suggestion(_key(finding.reason, finding.value, finding.account_ids), finding.reason,
                      shown, list(finding.account_ids), list(finding.verified_on or []))


def _still_current(suggestion: Suggestion) -> bool:
    active = db.session.scalar(
        select(func.count()).where(
            Account.id.in_(suggestion.account_ids), Account.status == AccountStatus.ACTIVE
        )
    )
    return active == len(suggestion.account_ids)


def _key(reason: str, value: str | None, account_ids: list[str]) -> str:
    return "|".join([reason, value or "", *sorted(account_ids)])
