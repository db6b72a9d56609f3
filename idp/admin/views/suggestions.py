"""Suggested merges from the identity report: review and merge, or dismiss."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _

from idp.admin import suggestions as service
from idp.admin.blueprint import admin_actor, bp
from idp.admin.forms import DismissForm


@bp.get("/suggestions")
def suggestions() -> Any:
    return render_template("admin/suggestions.html", suggestions=service.suggestions(),
                           form=DismissForm())


@bp.post("/suggestions/dismiss")
def suggestion_dismiss() -> Any:
    form = DismissForm()
    if form.validate_on_submit() and service.dismiss(form.key.data or "", admin_actor()):
        flash(_("Dismissed. It will not be suggested again unless another account joins it."),
              "info")
    else:
        flash(_("That suggestion is no longer open."), "error")
    return redirect(url_for("admin.suggestions"))
