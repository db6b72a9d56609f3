"""Account deletion from the account centre: a clear statement, re-authentication, the word
typed, then the grace period (`identity.deletion`). Signing in during it offers to cancel."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, fresh_auth, me, signed_in
from idp.account_centre.forms import ActionForm, DeletionForm
from idp.accounts.views import safe_next
from idp.identity.audit import Actor
from idp.identity.deletion import DeletionRefused, cancel_deletion, grace_period, schedule_deletion

CONFIRM_WORDS = ("DELETE", "注销")


@bp.route("/delete", methods=["GET", "POST"])
@signed_in
@fresh_auth
def delete() -> Any:
    account = me()
    form = DeletionForm()
    if form.validate_on_submit():
        if (form.confirm.data or "").strip().upper() not in CONFIRM_WORDS:
            flash(_("Type DELETE (or 注销) to confirm."), "error")
        else:
            due = schedule_deletion(account, Actor.user(account.id))
            session.clear()  # the engine ended every session; this cookie names a dead one
            flash(_("Your account will be deleted on %(when)s. Sign in before then to cancel.",
                    when=format_datetime(due, "medium")), "info")
            return redirect(url_for("accounts.login")), 303
    return render_template("account_centre/delete.html", form=form,
                           grace_days=grace_period().days), 400 if form.errors else 200


@bp.get("/deletion")
@signed_in
def deletion_pending() -> Any:
    account = me()
    if account.deletion_due_at is None:
        return redirect(url_for("account_centre.overview"))
    return render_template("account_centre/deletion_pending.html", account=account,
                           form=ActionForm(), next=request.args.get("next", ""))


@bp.post("/deletion/cancel")
@signed_in
def cancel_deletion_view() -> Any:
    account = me()
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        cancel_deletion(account, Actor.user(account.id))
    except DeletionRefused:
        return redirect(url_for("account_centre.overview")), 303
    flash(_("Deletion cancelled. Your account stays as it was."), "info")
    return redirect(safe_next(request.form.get("next") or url_for("account_centre.overview"))), 303
