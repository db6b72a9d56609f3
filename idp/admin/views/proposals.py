"""Proposals waiting for a second admin (four-eyes): the list, one proposal with the same preview
its proposer saw, and the decision (approve: `identity`, not the proposer; reject or withdraw)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from idp.admin import four_eyes
from idp.admin.access import admin_may
from idp.admin.blueprint import admin_actor, bp, current_admin
from idp.admin.forms import ConfirmForm
from idp.admin.merge_preview import preview_merge
from idp.extensions import db
from idp.identity.models import Account, Identity, MergeRecord
from idp.identity.rules import choose_survivor
from idp.staff.models import AdminProposal


@bp.get("/proposals")
def proposals() -> Any:
    return render_template("admin/proposals.html", proposals=four_eyes.pending_proposals())


@bp.get("/proposals/<int:proposal_id>")
def proposal_detail(proposal_id: int) -> Any:
    proposal = _proposal_or_404(proposal_id)
    subject = proposal.subject
    if proposal.action == "merge":
        survivor = db.session.get(Account, subject.get("survivor_id"))
        loser = db.session.get(Account, subject.get("loser_id"))
        if survivor is not None and loser is not None and proposal.status == "pending":
            return render_template(
                "admin/merge_preview.html", proposal=proposal, form=ConfirmForm(),
                preview=preview_merge(survivor, loser, admin_actor()),
                default_survivor=choose_survivor(survivor, loser),
            )
    return render_template(
        "admin/proposal.html", proposal=proposal, form=ConfirmForm(),
        record=db.session.get(MergeRecord, subject.get("merge_id") or 0),
        identity=db.session.get(Identity, subject.get("identity_id") or 0),
    )


@bp.post("/proposals/<int:proposal_id>/approve")
def proposal_approve(proposal_id: int) -> Any:
    proposal = _posted_proposal(proposal_id)
    try:
        four_eyes.approve(proposal, current_admin())
    except four_eyes.ApprovalRefused as refusal:
        return _refused(proposal_id, _refusal_text(refusal))
    except four_eyes.ENGINE_REFUSALS as refusal:  # also recorded on the proposal
        return _refused(proposal_id, _("Refused: %(reason)s", reason=str(refusal)))
    flash(_("Approved and carried out."), "info")
    return redirect(url_for("admin.proposal_detail", proposal_id=proposal_id))


@bp.post("/proposals/<int:proposal_id>/decline")
def proposal_decline(proposal_id: int) -> Any:
    proposal = _posted_proposal(proposal_id)
    if proposal.proposed_by != current_admin().id and not admin_may("merges.carry_out"):
        abort(403)
    try:
        four_eyes.decline(proposal, current_admin())
    except four_eyes.ApprovalRefused as refusal:
        return _refused(proposal_id, _refusal_text(refusal))
    flash(_("The proposal is closed; nothing was changed."), "info")
    return redirect(url_for("admin.proposals"))


def _proposal_or_404(proposal_id: int) -> AdminProposal:
    proposal = db.session.get(AdminProposal, proposal_id)
    if proposal is None:
        abort(404)
    return proposal


def _posted_proposal(proposal_id: int) -> AdminProposal:
    """The proposal a decision is posted for: 404 when there is none, 400 without the form."""
    proposal = _proposal_or_404(proposal_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return proposal


def _refused(proposal_id: int, message: str) -> Any:
    flash(message, "error")
    return redirect(url_for("admin.proposal_detail", proposal_id=proposal_id))


def _refusal_text(refusal: four_eyes.ApprovalRefused) -> str:
    texts = {
        "own_proposal": _("You proposed this: another admin with the identity role must "
                          "approve it."),
        "expired": _("The proposal has expired: propose it again."),
        "decided": _("The proposal was already decided."),
    }
    return texts.get(refusal.code, str(refusal))
