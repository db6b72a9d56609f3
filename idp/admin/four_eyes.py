"""Four-eyes (issue 27 item 2): a manual merge, undo or move proposed by one admin is carried out
only when a second admin holding `identity` approves it.

Which actions need the second admin is the operator's choice (`IDP_ADMIN_FOUR_EYES`, default
`merge undo move`; empty: none); a proposal expires after `IDP_ADMIN_APPROVAL_HOURS` (24). The
proposer can withdraw but never approve their own. Approving is a conditional update of the
status (pending → approved), so two admins pressing "approve" at once carry it out once. The
approval is carried out by the engine's own functions with the approver as actor and the
proposer's reason, and both admins are in the audit trail.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from idp.admin.account_actions import ActionRefused
from idp.extensions import db, rows_matched
from idp.identity import audit
from idp.identity.accounts import IdentityError
from idp.identity.audit import Actor
from idp.identity.links import move_identity
from idp.identity.merge import UndoRefused, merge_accounts, undo_merge
from idp.identity.models import Account, Identity, MergeRecord
from idp.identity.rules import MergeRefused, MergeRule, Proof, UnlinkRefused
from idp.models_base import utcnow
from idp.staff.models import AdminProposal

ACTIONS = ("merge", "undo", "move")
DEFAULT_FOUR_EYES = "merge undo move"
DEFAULT_APPROVAL_HOURS = 24
PENDING = "pending"
# What the engine raises when it refuses to carry a proposal out.
ENGINE_REFUSALS = (MergeRefused, UndoRefused, UnlinkRefused, ActionRefused, IdentityError)


class ApprovalRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def needs_second_admin(action: str) -> bool:
    setting = current_app.config.get("IDP_ADMIN_FOUR_EYES", DEFAULT_FOUR_EYES)
    return action in str(setting or "").replace(",", " ").split()


def propose(action: str, subject: dict[str, Any], reason: str, proposer: Account) -> AdminProposal:
    hours = float(current_app.config.get("IDP_ADMIN_APPROVAL_HOURS", DEFAULT_APPROVAL_HOURS))
    now = utcnow()
    proposal = AdminProposal(action=action, subject=subject, reason=reason[:255],
                             proposed_by=proposer.id, proposed_at=now,
                             expires_at=now + timedelta(hours=hours), status=PENDING)
    db.session.add(proposal)
    db.session.flush()
    audit.record("admin.proposal", Actor.admin(proposer.id), _account_of(action, subject),
                 reason=reason[:255], proposal_id=proposal.id, proposed=action, subject=subject)
    db.session.commit()
    return proposal


def pending_proposals() -> list[AdminProposal]:
    return list(db.session.scalars(
        select(AdminProposal).where(AdminProposal.status == PENDING,
                                    AdminProposal.expires_at > utcnow())
        .order_by(AdminProposal.id)
    ))


def approve(proposal: AdminProposal, approver: Account) -> Any:
    """Carries the proposal out; returns what the engine returned (a MergeRecord, the restored
    Account, the moved Identity). Raises ApprovalRefused, or the engine's refusal (the proposal
    is then marked failed)."""
    if proposal.proposed_by == approver.id:
        raise ApprovalRefused("own_proposal", "the proposer cannot approve their own proposal")
    _claim(proposal, approver, "approved")
    actor = Actor.admin(approver.id)
    try:
        result = _carry_out(proposal, actor)
    except ENGINE_REFUSALS as refusal:
        db.session.rollback()
        _settle(proposal.id, "failed", str(refusal))
        raise
    audit.record("admin.proposal_approve", actor, _account_of(proposal.action, proposal.subject),
                 reason=proposal.reason, proposal_id=proposal.id, proposed_by=proposal.proposed_by)
    db.session.commit()
    return result


def decline(proposal: AdminProposal, decider: Account) -> None:
    """Rejected by a second admin, or withdrawn by its proposer."""
    status = "withdrawn" if proposal.proposed_by == decider.id else "rejected"
    _claim(proposal, decider, status)
    action = "admin.proposal_withdraw" if status == "withdrawn" else "admin.proposal_reject"
    audit.record(action, Actor.admin(decider.id), _account_of(proposal.action, proposal.subject),
                 proposal_id=proposal.id)
    db.session.commit()


def _claim(proposal: AdminProposal, decider: Account, status: str) -> None:
    """pending → status, only if still pending and not expired (one winner under concurrency)."""
    now = utcnow()
    changed = rows_matched(
        update(AdminProposal)
        .where(AdminProposal.id == proposal.id, AdminProposal.status == PENDING,
               AdminProposal.expires_at > now)
        .values(status=status, decided_by=decider.id, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if changed != 1:
        db.session.refresh(proposal)
        if proposal.status == PENDING:
            raise ApprovalRefused("expired", "the proposal has expired")
        raise ApprovalRefused("decided", "the proposal was already decided")
    db.session.refresh(proposal)


def _settle(proposal_id: int, status: str, outcome: str) -> None:
    db.session.execute(update(AdminProposal).where(AdminProposal.id == proposal_id)
                       .values(status=status, outcome=outcome[:255]))
    db.session.commit()


def _carry_out(proposal: AdminProposal, actor: Actor) -> Any:
    subject = proposal.subject
    if proposal.action == "merge":
        survivor = _get(Account, subject["survivor_id"])
        loser = _get(Account, subject["loser_id"])
        return merge_accounts(survivor, loser, rule=MergeRule.ADMIN_DECISION,
                              proof=Proof.admin(proposal.reason), actor=actor)
    if proposal.action == "undo":
        return undo_merge(_get(MergeRecord, subject["merge_id"]), actor)
    if proposal.action == "move":
        identity = _get(Identity, subject["identity_id"])
        if identity.account_id != subject["from_account_id"]:
            raise ActionRefused("the identity has moved since the proposal")
        return move_identity(identity, _get(Account, subject["target_id"]), actor)
    raise ApprovalRefused("unknown_action", f"unknown action {proposal.action!r}")


def _get(model: Any, key: Any) -> Any:
    row = db.session.get(model, key)
    if row is None:
        raise ActionRefused("what the proposal names no longer exists")
    return row


def _account_of(action: str, subject: dict[str, Any]) -> str | None:
    return subject.get("survivor_id") or subject.get("target_id") or subject.get("account_id")
