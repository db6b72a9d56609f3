"""Suggested merges from the stored reconciliation run: review and merge, or dismiss."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.admin import suggestions as service
from idp.admin.blueprint import admin_actor, bp
from idp.admin.forms import ConfirmForm, DismissForm
from idp.maintenance.reconciliation import run_reconciliation


@bp.get("/suggestions")
def suggestions() -> Any:
    after = request.args.get("after", "0")
    page = service.suggestions(after=int(after) if after.isdigit() else 0)
    return render_template("admin/suggestions.html", page=page, suggestions=page.suggestions,
                           form=DismissForm(), run_form=ConfirmForm())


@bp.post("/suggestions/run")
def suggestions_run() -> Any:
    if ConfirmForm().validate_on_submit():
        run = run_reconciliation(trigger="admin")
        flash(_("The reconciliation report was run again (run %(id)d).", id=run.id), "info")
    return redirect(url_for("admin.suggestions"))


@bp.post("/suggestions/dismiss")
def suggestion_dismiss() -> Any:
    form = DismissForm()
    if form.validate_on_submit() and service.dismiss(form.key.data or "", admin_actor()):
        flash(_("Dismissed. It will not be suggested again unless another account joins it."),
              "info")
    else:
        flash(_("That suggestion is no longer open."), "error")
    return redirect(url_for("admin.suggestions"))
