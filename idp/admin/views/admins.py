"""Who holds which admin role: the list, a grant by phone or account id, a revocation. Only
`security` reaches these pages (idp/admin/access.py)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _

from idp.admin.blueprint import admin_actor, bp
from idp.admin.forms import RoleGrantForm
from idp.admin.views.helpers import account_or_404, confirm_page
from idp.extensions import db
from idp.identity.accounts import find_identity
from idp.identity.models import Account, IdentityKind
from idp.identity.phones import InvalidPhoneNumber, normalize_phone
from idp.staff.permissions import Role
from idp.staff.roles import RoleRefused, admin_holders, grant_role, revoke_role, separation_mode


@bp.route("/admins", methods=["GET"])
def admins() -> Any:
    return render_template("admin/admins.html", holders=admin_holders(), form=RoleGrantForm(),
                           separation=separation_mode())


@bp.route("/admins/grant", methods=["POST"])
def admin_grant() -> Any:
    form = RoleGrantForm()
    if not form.validate_on_submit():
        flash(_("Give the person's phone or account id, a role and a reason."), "error")
        return redirect(url_for("admin.admins"))
    account = _find(form.who.data or "")
    if account is None:
        flash(_("No account has that phone or id."), "error")
        return redirect(url_for("admin.admins"))
    try:
        granted = grant_role(account, form.role.data or "", admin_actor(), form.reason.data or "")
    except RoleRefused as refusal:
        db.session.rollback()
        flash(_("Refused: %(reason)s", reason=str(refusal)), "error")
        return redirect(url_for("admin.admins"))
    db.session.commit()
    flash(_("The role is granted.") if granted else _("The account already held that role."),
          "info")
    return redirect(url_for("admin.admins"))


@bp.route("/admins/<account_id>/<role>/revoke", methods=["GET", "POST"])
def admin_revoke(account_id: str, role: str) -> Any:
    from idp.admin.forms import ConfirmForm

    account = account_or_404(account_id)
    if role not in {r.value for r in Role}:
        return redirect(url_for("admin.admins"))
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            revoke_role(account, role, admin_actor())
        except RoleRefused as refusal:
            db.session.rollback()
            flash(_("Refused: %(reason)s", reason=str(refusal)), "error")
            return redirect(url_for("admin.admins"))
        db.session.commit()
        flash(_("The role is revoked."), "info")
        return redirect(url_for("admin.admins"))
    return confirm_page(
        _("Revoke the role %(role)s?", role=role),
        [_("Account %(account)s can no longer do what the role %(role)s allows, from its next "
           "page on.", account=account.id, role=role)],
        url_for("admin.admin_revoke", account_id=account.id, role=role),
        back=url_for("admin.admins"),
    )


def _find(who: str) -> Account | None:
    text = who.strip()
    account = db.session.get(Account, text.lower())
    if account is not None:
        return account
    try:
        phone = normalize_phone(text)
    except InvalidPhoneNumber:
        return None
    identity = find_identity(IdentityKind.PHONE, phone)
    return identity.account if identity is not None else None
