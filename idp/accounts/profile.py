"""The user's own account page: profile claims they may edit, and their linked login methods."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import URL, DataRequired, Length, Optional

from idp.accounts.passwords import WeakPassword, hash_password
from idp.accounts.registration import add_password
from idp.accounts.sessions import current_account, current_session
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.claims import profile_values
from idp.identity.models import IdentityKind
from idp.identity.service import identities_of, set_claim
from idp.models_base import utcnow

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
        password_form=SetPasswordForm(formdata=None)
        if not identities_of(account, IdentityKind.PASSWORD) else None,
    )


class SetPasswordForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=1024)])


RECENT_SIGN_IN = timedelta(minutes=15)


@bp.post("/account/password")
def set_password() -> Any:
    """An account that signs in by SMS code (or came from the mini-program) adds a password.
    Only right after signing in: a session left open on a shared computer must not let someone
    add a way in. Changing an existing password goes through the reset by SMS code."""
    row = current_session()
    account = current_account()
    if row is None or account is None:
        return redirect(url_for("accounts.login", next=url_for("profile.account_page")))
    if identities_of(account, IdentityKind.PASSWORD):
        flash(_("This account has a password: change it with “Forgot your password?”."), "error")
        return redirect(url_for("profile.account_page"))
    signed_in_at = row.auth_time.replace(tzinfo=row.auth_time.tzinfo or UTC)
    if utcnow() - signed_in_at > RECENT_SIGN_IN:
        flash(_("Please sign in again to set a password."), "error")
        return redirect(url_for("accounts.login", next=url_for("profile.account_page")))
    form = SetPasswordForm()
    if not form.validate_on_submit():
        flash(_("Choose a password of at least 8 characters."), "error")
        return redirect(url_for("profile.account_page"))
    try:
        add_password(account, hash_password(form.password.data or ""), Actor.user(account.id))
    except WeakPassword:
        flash(_("Choose a password of at least 8 characters."), "error")
        return redirect(url_for("profile.account_page"))
    db.session.commit()
    flash(_("Your password is set: you can now also sign in with it."), "info")
    return redirect(url_for("profile.account_page"))


from idp.accounts import phone_views  # noqa: E402, F401 - adds the phone routes to `bp`
