"""Set or change the password. It must pass the strength estimate (`strength.py`); changing it
signs the account out everywhere through the engine (`sign_out_everywhere`: sessions with
back-channel logout, refresh families, access tokens), and this browser gets a new session."""

from __future__ import annotations

import secrets
from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, fresh_auth, me, signed_in
from idp.account_centre.forms import NewPasswordForm
from idp.account_centre.strength import estimate
from idp.accounts import passwords
from idp.accounts.sessions import current_session, start_session
from idp.extensions import db
from idp.identity import audit
from idp.identity.accounts import identities_of, link_identity
from idp.identity.audit import Actor
from idp.identity.claims import profile_values
from idp.identity.models import Account, IdentityKind
from idp.identity.sign_out import sign_out_everywhere


def known_words(account: Account) -> list[str]:
    words = [identity.value for identity in identities_of(account)
             if identity.kind in (IdentityKind.PHONE, IdentityKind.EMAIL)]
    words += [value for name, (value, _source) in profile_values(account).items()
              if name in ("name", "nickname") and value]
    return words + [word.lstrip("+") for word in words]


def replace_password(account: Account, new_password: str, actor: Actor) -> None:
    """One credential with the new hash; every other credential of the account ends."""
    password_hash = passwords.hash_password(new_password)
    credentials = identities_of(account, IdentityKind.PASSWORD)
    for credential in credentials[1:]:
        db.session.delete(credential)
    if credentials:
        credentials[0].secret_hash = password_hash
        audit.record("password.change", actor, account.id, reason="account centre")
    else:
        link_identity(account, IdentityKind.PASSWORD, secrets.token_urlsafe(16), actor,
                      verified=True, proof="password", secret_hash=password_hash)
    sign_out_everywhere(account, actor, reason="password changed")


@bp.route("/password", methods=["GET", "POST"])
@signed_in
@fresh_auth
def password() -> Any:
    account = me()
    form = NewPasswordForm()
    had_password = bool(identities_of(account, IdentityKind.PASSWORD))
    problems: list[str] = []
    if form.validate_on_submit():
        new = form.password.data or ""
        strength = estimate(new, known_words(account))
        if new != form.confirm.data:
            problems = [_("The two passwords are not the same.")]
        elif not strength.acceptable:
            problems = strength.messages
        else:
            here = current_session()
            amr = here.amr.split() if here else ["pwd"]
            replace_password(account, new, Actor.user(account.id))
            db.session.commit()
            # Every session ended, this one included; the person who just proved it goes on.
            start_session(account, amr=amr, channel=here.channel if here else "website_password")
            flash(_("Your password has been changed. Your other sessions have ended."), "info")
            return redirect(url_for("account_centre.overview")), 303
    return render_template("account_centre/password.html", form=form, problems=problems,
                           had_password=had_password), 400 if problems else 200
