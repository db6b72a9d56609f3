"""The data dictionary (every claim, its type, scope, writers and conflict rule) and an admin's
edit of one account's claims, through the engine's `write_claim`."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.admin.blueprint import admin_actor, bp
from idp.admin.forms import ConfirmForm
from idp.admin.views.helpers import account_or_404
from idp.extensions import db
from idp.identity import audit
from idp.identity.accounts import write_claim
from idp.identity.catalogue import (
    RELEASING_SCOPES,
    TYPES,
    WRITERS,
    ClaimRefused,
    catalogue,
    declare_claim,
    supported_scopes,
)
from idp.identity.claims import profile_values


@bp.route("/claims", methods=["GET", "POST"])
def data_dictionary() -> Any:
    """The dictionary, and the form that declares an operator-defined claim."""
    form = ConfirmForm()
    error = None
    if request.method == "POST" and form.validate_on_submit():
        entry = {"name": request.form.get("name", "").strip(),
                 "type": request.form.get("type", ""), "scope": request.form.get("scope", ""),
                 "writers": request.form.getlist("writers"),
                 "description": request.form.get("description", "").strip()[:500],
                 "scope_description": request.form.get("scope_description", "").strip()}
        try:
            declared = declare_claim(entry)
        except ValueError as refused:
            db.session.rollback()
            error = str(refused).removeprefix("IDP_CUSTOM_CLAIMS").lstrip(": ")
        else:
            audit.record("claim_declared", admin_actor(), None, claim=declared.name,
                         type=declared.type, scope=declared.scope,
                         writers=list(declared.writers))
            db.session.commit()
            flash(_("The claim %(name)s is declared.", name=declared.name), "info")
            return redirect(url_for("admin.data_dictionary"))
    known = catalogue()
    return render_template(
        "admin/claims.html", claims=known.profile_claims(),
        identity_claims=known.served_from_identities(), form=form, error=error, types=TYPES[:5],
        scopes=RELEASING_SCOPES + tuple(sorted(known.declared_scopes())), writers=WRITERS,
        scope_rows=_scope_rows(),
    ), 400 if error else 200


def _scope_rows() -> list[dict[str, Any]]:
    """Every scope a client may ask for, what it releases, and whether the operator made it."""
    known = catalogue()
    declared = known.declared_scopes()
    return [
        {"scope": scope, "declared": scope in declared,
         "description": known.scope_description(scope),
         "claims": [claim.name for claim in known.released_by({scope})]}
        for scope in supported_scopes()
    ]


@bp.route("/accounts/<account_id>/claims", methods=["GET", "POST"])
def account_claims(account_id: str) -> Any:
    account = account_or_404(account_id)
    editable = [claim for claim in catalogue().claims.values() if "admin" in claim.writers]
    values = profile_values(account)
    form = ConfirmForm()
    errors: dict[str, str] = {}
    if request.method == "POST" and form.validate_on_submit():
        submitted = {claim.name: request.form.get(f"claim-{claim.name}", "").strip()
                     for claim in editable}
        try:
            for claim in editable:
                if submitted[claim.name] != _shown(values, claim.name):
                    write_claim(account, claim.name, submitted[claim.name], admin_actor())
        except ClaimRefused as refused:
            db.session.rollback()
            errors[refused.name] = refused.reason
        else:
            db.session.commit()
            flash(_("The claims are saved."), "info")
            return redirect(url_for("admin.account_detail", account_id=account.id))
        values = {name: (submitted.get(name, ""), "admin") for name in submitted}
    return render_template(
        "admin/account_claims.html", account=account, claims=editable, form=form,
        values={claim.name: _shown(values, claim.name) for claim in editable},
        errors=errors,
    ), 400 if errors else 200


def _shown(values: dict[str, tuple[str, str]], name: str) -> str:
    return values.get(name, ("", ""))[0]
