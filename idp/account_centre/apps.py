"""Connected apps, and who received my data (PIPL Art. 44): each client holding a consent or a
refresh token, with scopes and last use, and each client that received claims about the account,
which ones and when (`idp.oidc.releases`). Withdrawing consent goes through the engine
(`idp.oidc.apps.revoke_app`): the client's tokens die and it is told."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, me, path_id, signed_in
from idp.account_centre.forms import ActionForm
from idp.extensions import db
from idp.identity.audit import Actor
from idp.oidc.apps import NotConnected, connected_apps, revoke_app
from idp.oidc.releases import released_to


@bp.get("/apps")
@signed_in
def apps() -> Any:
    account = me()
    connected = connected_apps(account)
    received = {found.client.client_id: found for found in released_to(account)}
    linked = {app.client.client_id for app in connected}
    return render_template(
        "account_centre/apps.html", apps=connected, received=received,
        past=[found for client_id, found in received.items() if client_id not in linked],
        form=ActionForm(),
    )


@bp.post("/apps/<client_id>/revoke")
@signed_in
def revoke(client_id: str) -> Any:
    account = me()
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        revoke_app(account, path_id(client_id), Actor.user(account.id))
    except NotConnected:
        abort(404)
    db.session.commit()
    flash(_("Access removed. The app must ask you again to sign you in."), "info")
    return redirect(url_for("account_centre.apps")), 303
