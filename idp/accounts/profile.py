"""The user's own account page: profile claims they may edit, and their linked login methods."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import URL, Length, Optional

from idp.accounts.sessions import current_account
from idp.extensions import db
from idp.identity.claims import profile_values
from idp.identity.models import IdentityKind
from idp.identity.service import identities_of, set_claim

bp = Blueprint("profile", __name__)


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=80)])
    nickname = StringField("Nickname", validators=[Optional(), Length(max=80)])
    picture = StringField(
        "Picture URL", validators=[Optional(), Length(max=500), URL(require_tld=False)]
    )


@bp.route("/account", methods=["GET", "POST"])
def account_page() -> Any:
    account = current_account()
    if account is None:
        return redirect(url_for("accounts.login", next=url_for("profile.account_page")))
    values = profile_values(account)
    form = ProfileForm()
    if form.validate_on_submit():
        changed = False
        for name in ("name", "nickname", "picture"):
            submitted = (getattr(form, name).data or "").strip()
            if submitted != values.get(name, ("", ""))[0]:
                changed |= set_claim(account, name, submitted or None, "user")
        db.session.commit()
        if changed:
            flash(_("Your profile has been saved."), "info")
        return redirect(url_for("profile.account_page"))
    if not form.is_submitted():
        for name in ("name", "nickname", "picture"):
            getattr(form, name).data = values.get(name, ("", ""))[0]
    return render_template(
        "accounts/account.html", account=account, form=form, identities=identities_of(account),
        has_password=bool(identities_of(account, IdentityKind.PASSWORD)),
        has_phone=bool(identities_of(account, IdentityKind.PHONE)),
    )
