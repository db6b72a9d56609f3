"""The second factor: enrol TOTP by QR code, then a code at every new IdP session."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.admin import access
from idp.admin.blueprint import admin_actor, bp, current_admin
from idp.admin.forms import TotpForm
from idp.admin.views.helpers import admin_next
from idp.extensions import db
from idp.identity import audit
from idp.second_factor import admin_totp as totp
from idp.security.throttle import Throttled


@bp.route("/totp/enrol", methods=["GET", "POST"])
def totp_enrol() -> Any:
    admin = current_admin()
    form = TotpForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if admin.totp_secret_encrypted:
        return redirect(url_for("admin.totp_verify", next=form.next.data or ""))
    secret = totp.pending_secret(admin)
    if form.validate_on_submit():
        response = _check(form, secret)
        if response is not None:
            return response
        totp.finish_enrolment(admin, secret)
        access.mark_second_factor_passed(g.admin_session)
        flash(_("Two-factor authentication is on for your account."), "info")
        return redirect(admin_next(form.next.data))
    label = _label(admin)
    return render_template(
        "admin/totp_enrol.html",
        form=form,
        secret=secret,
        qr=totp.qr_svg(totp.provisioning_uri(admin, secret, label)),
    )


@bp.route("/totp", methods=["GET", "POST"])
def totp_verify() -> Any:
    admin = current_admin()
    secret = totp.enrolled_secret(admin)
    form = TotpForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if secret is None:
        return redirect(url_for("admin.totp_enrol", next=form.next.data or ""))
    if form.validate_on_submit():
        response = _check(form, secret)
        if response is None:
            access.mark_second_factor_passed(g.admin_session)
            audit.record("admin.second_factor", admin_actor(), admin.id, reason="totp")
            db.session.commit()
            return redirect(admin_next(form.next.data))
        return response
    return render_template("admin/totp_verify.html", form=form)


def _check(form: TotpForm, secret: str) -> Any:
    """None when the code is right; otherwise the page to answer with."""
    admin = current_admin()
    template = "admin/totp_verify.html" if admin.totp_secret_encrypted else "admin/totp_enrol.html"
    try:
        totp.attempts_by_account.check(admin.id)
    except Throttled as error:
        flash(_("Too many wrong codes. Try again in %(minutes)d minutes.",
                minutes=max(1, error.retry_after // 60)), "error")
        return _again(template, form, secret), 429, {"Retry-After": str(error.retry_after)}
    if totp.accept_code(admin, secret, form.code.data or ""):
        return None
    flash(_("That code is not right. Codes change every 30 seconds and work once."), "error")
    return _again(template, form, secret), 400


def _again(template: str, form: TotpForm, secret: str) -> str:
    admin = current_admin()
    extra = {}
    if template == "admin/totp_enrol.html":
        extra = {"secret": secret,
                 "qr": totp.qr_svg(totp.provisioning_uri(admin, secret, _label(admin)))}
    return render_template(template, form=form, **extra)


def _label(admin: Any) -> str:
    phones = [i.value for i in admin.identities if i.kind == "phone" and i.verified]
    return phones[0] if phones else admin.id

