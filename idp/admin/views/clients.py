"""Relying parties: list, create, edit, rotate the secret (shown once)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from idp.admin import client_admin
from idp.admin.blueprint import admin_actor, bp
from idp.admin.forms import ClientForm, ConfirmForm
from idp.admin.views.helpers import confirm_page
from idp.events.sets import DEFAULT_SUBSCRIPTION
from idp.extensions import db
from idp.identity.catalogue import registrable_scopes
from idp.oidc.clients import ClientSpecError
from idp.oidc.models import Client

NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/clients")
def clients() -> Any:
    rows = db.session.scalars(select(Client).order_by(Client.created_at.desc())).all()
    return render_template("admin/clients.html", clients=rows)


@bp.route("/clients/new", methods=["GET", "POST"])
def client_create() -> Any:
    form = ClientForm()
    if request.method == "GET":
        form.scope.data = "openid profile phone email offline_access"
        form.grant_types.data = ["authorization_code", "refresh_token"]
        form.event_types.data = list(DEFAULT_SUBSCRIPTION)
    if form.validate_on_submit():
        try:
            client, secret = client_admin.create_from_form(form, admin_actor())
        except ClientSpecError as error:
            db.session.rollback()
            flash(str(error), "error")
        else:
            return render_template("admin/client_secret.html", client=client, secret=secret,
                                   created=True), 200, NO_STORE
    return render_template("admin/client_form.html", form=form, client=None,
                           known_scopes=registrable_scopes())


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
def client_edit(client_id: str) -> Any:
    client = _client_or_404(client_id)
    form = ClientForm(data=client_admin.form_data(client) if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            client_admin.update_from_form(client, form, admin_actor())
        except ClientSpecError as error:
            db.session.rollback()
            flash(str(error), "error")
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("admin.client_edit", client_id=client_id))
    return render_template("admin/client_form.html", form=form, client=client,
                           known_scopes=registrable_scopes())


@bp.route("/clients/<client_id>/rotate-secret", methods=["GET", "POST"])
def client_rotate_secret(client_id: str) -> Any:
    client = _client_or_404(client_id)
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        try:
            secret = client_admin.rotate_secret(client, admin_actor())
        except ClientSpecError as error:
            flash(str(error), "error")
            return redirect(url_for("admin.client_edit", client_id=client_id))
        return render_template("admin/client_secret.html", client=client, secret=secret,
                               created=False), 200, NO_STORE
    return confirm_page(
        _("Rotate the secret of %(name)s?", name=client.name),
        [_("A new secret is generated and shown once, on the next page."),
         _("The current secret stops working immediately: %(name)s cannot get tokens until it "
           "is configured with the new one.", name=client.name)],
        request.path, back=url_for("admin.client_edit", client_id=client_id),
    )


def _client_or_404(client_id: str) -> Client:
    client = db.session.get(Client, client_id)
    if client is None:
        abort(404)
    return client
