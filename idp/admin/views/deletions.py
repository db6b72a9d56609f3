"""Pending account deletions (注销): admins see them and can erase one now or cancel it. The
engine (`idp.identity.deletion`) does the work, as for the user and the worker."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.admin.blueprint import admin_actor, bp
from idp.admin.forms import ConfirmForm
from idp.admin.views.helpers import account_or_404, confirm_page
from idp.identity.deletion import DeletionRefused, cancel_deletion, erase_account, pending_deletions


@bp.get("/deletions")
def deletions() -> Any:
    return render_template("admin/deletions.html", accounts=pending_deletions())


@bp.route("/deletions/<account_id>/erase", methods=["GET", "POST"])
def deletion_erase(account_id: str) -> Any:
    account = account_or_404(account_id)
    if account.deletion_due_at is None:
        abort(404)
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        try:
            erase_account(account, admin_actor())
        except DeletionRefused as refusal:
            flash(_("Refused: %(reason)s", reason=str(refusal)), "error")
        else:
            flash(_("The account's personal data is erased; a tombstone remains."), "info")
        return redirect(url_for("admin.deletions"))
    return confirm_page(
        _("Erase this account now?"),
        [_("Its phone, email, WeChat links, password, profile, second factors, sessions, "
           "consents and tokens are erased now, before the grace period ends."),
         _("Its sub is never issued again. This cannot be undone.")],
        request.path, back=url_for("admin.deletions"),
    )


@bp.route("/deletions/<account_id>/cancel", methods=["GET", "POST"])
def deletion_cancel(account_id: str) -> Any:
    account = account_or_404(account_id)
    if account.deletion_due_at is None:
        abort(404)
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        try:
            cancel_deletion(account, admin_actor())
        except DeletionRefused as refusal:
            flash(_("Refused: %(reason)s", reason=str(refusal)), "error")
        else:
            flash(_("The deletion is cancelled."), "info")
        return redirect(url_for("admin.deletions"))
    return confirm_page(
        _("Cancel this deletion?"),
        [_("The account stays. Its sessions and tokens ended when deletion was asked for; "
           "the user signs in again.")],
        request.path, back=url_for("admin.deletions"), danger=False,
    )
