"""Signing keys: list, rotate, retire."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from idp.admin.blueprint import admin_actor, bp
from idp.admin.forms import ConfirmForm
from idp.admin.views.helpers import confirm_page
from idp.extensions import db
from idp.identity import audit
from idp.oidc.keys import (
    SigningKeyUnavailable,
    retire_key,
    rotate_keys,
    signing_rows,
    signs_from,
)
from idp.oidc.models import SigningKey


@bp.get("/keys")
def keys() -> Any:
    rows = db.session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())).all()
    current = {row.kid for row in signing_rows(rows, _sign_after()).values()}
    return render_template("admin/keys.html", keys=rows, current=current)


@bp.route("/keys/rotate", methods=["GET", "POST"])
def keys_rotate() -> Any:
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        created = rotate_keys(current_app.extensions["idp_secret_box"])
        current_app.extensions["idp_keyring"].invalidate()
        audit.record("admin.keys_rotate", admin_actor(), None,
                     kids=[row.kid for row in created])
        db.session.commit()
        flash(_("New signing keys are published: %(kids)s. They sign from %(when)s UTC, once "
                "every cached copy of the JWKS holds them.",
                kids=", ".join(row.kid for row in created),
                when=f"{signs_from(created[0], _sign_after()):%Y-%m-%d %H:%M:%S}"), "info")
        return redirect(url_for("admin.keys"))
    return confirm_page(
        _("Rotate the signing keys?"),
        [_("A new RS256 key and a new ES256 key are published now, and sign every token once "
           "every cached copy of the JWKS holds them (%(seconds)s s).",
           seconds=int(_sign_after())),
         _("The current keys stay published in the JWKS, so tokens they signed keep verifying "
           "until you retire them.")],
        request.path, back=url_for("admin.keys"), danger=False,
    )


@bp.route("/keys/<kid>/retire", methods=["GET", "POST"])
def key_retire(kid: str) -> Any:
    row = db.session.get(SigningKey, kid)
    if row is None:
        abort(404)
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        try:
            retire_key(kid, _sign_after())
        except SigningKeyUnavailable as error:
            flash(_("Refused: %(reason)s", reason=str(error)), "error")
            return redirect(url_for("admin.keys"))
        current_app.extensions["idp_keyring"].invalidate()
        audit.record("admin.key_retire", admin_actor(), None, kid=kid)
        db.session.commit()
        flash(_("Key %(kid)s is retired.", kid=kid), "info")
        return redirect(url_for("admin.keys"))
    return confirm_page(
        _("Retire key %(kid)s?", kid=kid),
        [_("The key leaves the JWKS: every token it signed (ID tokens, access tokens, events) "
           "stops verifying at relying parties once they refresh their key cache."),
         _("The current key of an algorithm cannot be retired: rotate first.")],
        request.path, back=url_for("admin.keys"),
    )


def _sign_after() -> float:
    return float(current_app.extensions["idp_keyring"].sign_after)
