"""The user's own account page: the profile claims they may write (every claim of the data
dictionary whose writers include `user`, `profile_form.py`), and their linked login methods."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from idp.accounts.profile_form import profile_form, submitted_changes
from idp.accounts.sessions import current_account
from idp.extensions import db
from idp.identity.accounts import identities_of, write_claim
from idp.identity.audit import Actor
from idp.identity.claims import profile_values
from idp.identity.models import IdentityKind

bp = Blueprint("profile", __name__)


class CsrfForm(FlaskForm):
    """The profile's inputs come from the data dictionary; this checks the CSRF token."""


@bp.route("/account", methods=["GET", "POST"])
def account_page() -> Any:
    account = current_account()
    if account is None:
        return redirect(url_for("accounts.login", next=url_for("profile.account_page")))
    csrf = CsrfForm()
    form = profile_form(profile_values(account))
    if csrf.validate_on_submit():
        changes = submitted_changes(form, request.form)
        if not form.errors:
            actor = Actor.user(account.id)
            changed = False
            for name, value in changes.items():
                changed |= write_claim(account, name, value, actor)
            db.session.commit()
            if changed:
                flash(_("Your profile has been saved."), "info")
            return redirect(url_for("profile.account_page"))
    status = 400 if form.errors else 200
    return render_template(
        "accounts/account.html", account=account, csrf=csrf, form=form,
        identities=identities_of(account),
        has_password=bool(identities_of(account, IdentityKind.PASSWORD)),
        has_phone=bool(identities_of(account, IdentityKind.PHONE)),
    ), status
