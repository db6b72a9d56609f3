"""Merging two accounts (preview, then confirm), the merge history, and undo."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from idp.admin import four_eyes
from idp.admin.access import admin_may
from idp.admin.blueprint import admin_actor, bp, current_admin
from idp.admin.forms import ConfirmForm, MergeForm
from idp.admin.merge_preview import preview_merge
from idp.admin.search import search_accounts
from idp.admin.views.helpers import account_or_404, confirm_page, page_number
from idp.extensions import db
from idp.identity.merge import UndoRefused, merge_accounts, undo_merge
from idp.identity.models import Account, MergeRecord
from idp.identity.rules import MergeRefused, MergeRule, Proof, choose_survivor

PER_PAGE = 25


@bp.get("/merge")
def merge_preview() -> Any:
    """?a=<id>&b=<id>[&survivor=<id>]; with only `a`, a search for the other account."""
    first = account_or_404(request.args.get("a", ""))
    other_id = request.args.get("b", "")
    if not other_id:
        query = request.args.get("q", "")
        found = search_accounts(query, page_number()) if query else None
        return render_template("admin/merge_pick.html", account=first, query=query, found=found)
    second = account_or_404(other_id)
    picked = request.args.get("survivor")
    choice = {first.id: first, second.id: second}.get(picked or "")
    try:
        survivor = choose_survivor(first, second, choice)
    except MergeRefused:
        abort(400)
    loser = second if survivor.id == first.id else first
    form = MergeForm(survivor_id=survivor.id, loser_id=loser.id)
    return render_template(
        "admin/merge_preview.html",
        preview=preview_merge(survivor, loser, admin_actor()),
        default_survivor=choose_survivor(first, second),
        form=form,
    )


@bp.post("/merge")
def merge_confirm() -> Any:
    form = MergeForm()
    if not form.validate_on_submit():
        flash(_("Give a reason for the merge: it goes into the audit log."), "error")
        return redirect(url_for("admin.merge_preview", a=form.survivor_id.data or "",
                                b=form.loser_id.data or "", survivor=form.survivor_id.data or ""))
    survivor = account_or_404(form.survivor_id.data or "")
    loser = account_or_404(form.loser_id.data or "")
    if four_eyes.needs_second_admin("merge"):
        proposal = four_eyes.propose("merge", {"survivor_id": survivor.id, "loser_id": loser.id},
                                     form.reason.data or "", current_admin())
        return proposed(proposal.id)
    if not admin_may("merges.carry_out"):
        abort(403)
    try:
        record = merge_accounts(
            survivor, loser, rule=MergeRule.ADMIN_DECISION,
            proof=Proof.admin(form.reason.data or ""), actor=admin_actor(),
        )
    except MergeRefused as refusal:
        flash(_("Refused: %(reason)s", reason=str(refusal)), "error")
        return redirect(url_for("admin.merge_preview", a=survivor.id, b=loser.id,
                                survivor=survivor.id))
    flash(_("Merged. %(loser)s is now an alias of %(survivor)s (merge #%(id)d).",
            loser=loser.id, survivor=survivor.id, id=record.id), "info")
    return redirect(url_for("admin.account_detail", account_id=survivor.id))


@bp.get("/merges")
def merges() -> Any:
    page = page_number()
    total = db.session.scalar(select(func.count()).select_from(MergeRecord)) or 0
    records = db.session.scalars(
        select(MergeRecord).order_by(MergeRecord.id.desc())
        .offset((page - 1) * PER_PAGE).limit(PER_PAGE)
    ).all()
    return render_template("admin/merges.html", records=records, page=page,
                           pages=max(1, -(-total // PER_PAGE)))


@bp.route("/merges/<int:merge_id>/undo", methods=["GET", "POST"])
def merge_undo(merge_id: int) -> Any:
    record = db.session.get(MergeRecord, merge_id)
    if record is None:
        abort(404)
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        if four_eyes.needs_second_admin("undo"):
            reason = (request.form.get("reason") or "").strip()
            if not reason:
                flash(_("Give a reason: it goes into the audit log."), "error")
                return redirect(url_for("admin.merge_undo", merge_id=merge_id))
            proposal = four_eyes.propose("undo", {"merge_id": record.id,
                                                  "account_id": record.survivor_id},
                                         reason, current_admin())
            return proposed(proposal.id)
        if not admin_may("merges.carry_out"):
            abort(403)
        try:
            restored = undo_merge(record, admin_actor())
        except UndoRefused as refusal:
            flash(_("Refused: %(reason)s", reason=str(refusal)), "error")
            return redirect(url_for("admin.merges"))
        flash(_("Merge #%(id)d is undone; %(account)s is its own account again.",
                id=merge_id, account=restored.id), "info")
        return redirect(url_for("admin.account_detail", account_id=restored.id))
    survivor = db.session.get(Account, record.survivor_id)
    assert survivor is not None
    snapshot = record.snapshot or {}
    return confirm_page(
        _("Undo merge #%(id)d?", id=merge_id),
        [_("Account %(loser)s comes back with its own sub, its %(count)d identities, its "
           "profile claims and consents.", loser=record.loser_id,
           count=len(snapshot.get("identities", []))),
         _("%(loser)s stops being an alias of %(survivor)s.", loser=record.loser_id,
           survivor=record.survivor_id),
         _("Sessions and refresh tokens of %(survivor)s created since the merge end, and its "
           "access tokens stop working: whoever signed in through the other account's "
           "identities may be the other person.", survivor=record.survivor_id),
         _("Subscribed applications receive an account-unmerged event.")],
        url_for("admin.merge_undo", merge_id=merge_id),
        back=url_for("admin.merges"), ask_reason=four_eyes.needs_second_admin("undo"),
    )


def proposed(proposal_id: int) -> Any:
    flash(_("Proposed as #%(id)d: it is carried out once another admin with the identity role "
            "approves it.", id=proposal_id), "info")
    return redirect(url_for("admin.proposal_detail", proposal_id=proposal_id))
