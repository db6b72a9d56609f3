"""Revoke every token at once: the admin twin of `idp tokens revoke-all` (after a restore)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from idp.admin.blueprint import admin_actor, bp
from idp.admin.forms import ConfirmForm
from idp.admin.views.helpers import confirm_page
from idp.extensions import db
from idp.identity import audit
from idp.oidc.revocation import revoke_all_tokens


@bp.route("/tokens/revoke-all", methods=["GET", "POST"])
def tokens_revoke_all() -> Any:
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        actor = admin_actor()
        result = revoke_all_tokens(str(actor))
        audit.record("admin.tokens_revoke_all", actor, None,
                     refresh_tokens=result.refresh_tokens,
                     not_before=result.not_before.isoformat())
        db.session.commit()
        flash(_("Every token issued until now is revoked (%(count)d refresh tokens).",
                count=result.refresh_tokens), "info")
        return redirect(url_for("admin.keys"))
    return confirm_page(
        _("Revoke every token?"),
        [_("Every refresh token is revoked and every access token issued until now is "
           "rejected, for every user and every client: all of them must sign in again."),
         _("Do this after restoring a backup: the restored database has forgotten the tokens "
           "revoked after it was taken.")],
        request.path, back=url_for("admin.keys"),
    )
