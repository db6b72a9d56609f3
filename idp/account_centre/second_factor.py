"""Second-factor pages: enrol and remove factors (after re-authentication, then the offer to
sign out everywhere else: `sign_out_elsewhere`), recovery codes, and the step after the first
factor at sign-in. A session that passes it carries amr `otp` (or `hwk`/`swk` for a passkey)
and `mfa` (RFC 8176 §2)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, fresh_auth, me, recently_authenticated, signed_in
from idp.account_centre.forms import ActionForm, CodeForm
from idp.account_centre.sign_out_elsewhere import offer_after_enrolment, offer_open
from idp.accounts.sessions import current_session, session_awaiting_second_factor
from idp.accounts.views import safe_next
from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account, LoginSession
from idp.models_base import utcnow
from idp.second_factor import factors
from idp.second_factor.recovery_codes import (
    new_recovery_codes,
    remaining_recovery_codes,
    use_recovery_code,
)
from idp.security.throttle import Throttled


@bp.get("/two-factor")
@signed_in
def two_factor() -> Any:
    account = me()
    return render_template(
        "account_centre/two_factor.html", factors=factors.factors_of(account), form=ActionForm(),
        recovery_left=remaining_recovery_codes(account),
        fresh=recently_authenticated(current_session()),
        sign_out_offer=offer_open(account),
    )


@bp.route("/two-factor/totp", methods=["GET", "POST"])
@signed_in
@fresh_auth
def enrol_totp() -> Any:
    account = me()
    form = CodeForm()
    secret = factors.pending_totp_secret(account)
    if form.validate_on_submit():
        try:
            factors.attempts_by_account.check(account.id)
        except Throttled:
            flash(_("Too many attempts. Please wait a few minutes."), "error")
        else:
            first = not factors.factors_of(account)
            if factors.enrol_totp(account, form.code.data or "", _("Authenticator app")):
                codes = new_recovery_codes(account) if first else None
                db.session.commit()
                offer_after_enrolment()
                if codes:
                    return render_template("account_centre/recovery_codes.html", codes=codes)
                flash(_("Authenticator app added."), "info")
                return redirect(url_for("account_centre.two_factor")), 303
            db.session.commit()
            flash(_("That code is not right. Check the time on your phone and try again."),
                  "error")
    label = factors.provisioning_uri(secret, _label(account))
    return render_template("account_centre/totp_enrol.html", form=form, secret=secret,
                           qr=factors.qr_svg(label))


@bp.post("/two-factor/recovery-codes")
@signed_in
@fresh_auth(back="account_centre.two_factor")
def recovery_codes() -> Any:
    account = me()
    if not ActionForm().validate_on_submit():
        abort(400)
    if not factors.factors_of(account):
        flash(_("Add a second factor first."), "error")
        return redirect(url_for("account_centre.two_factor")), 303
    codes = new_recovery_codes(account)
    db.session.commit()
    return render_template("account_centre/recovery_codes.html", codes=codes)


@bp.post("/two-factor/<int:factor_id>/remove")
@signed_in
@fresh_auth(back="account_centre.two_factor")
def remove_factor(factor_id: int) -> Any:
    account = me()
    if not ActionForm().validate_on_submit():
        abort(400)
    if not factors.remove_factor(account, factor_id):
        abort(404)
    db.session.commit()
    flash(_("Second factor removed."), "info")
    return redirect(url_for("account_centre.two_factor")), 303


# --- the step after the first factor -----------------------------------------------------------


@bp.route("/second-factor", methods=["GET", "POST"])
def second_factor() -> Any:
    row = session_awaiting_second_factor()
    target = safe_next(request.values.get("next"))
    if row is None:
        return redirect(target)
    account = db.session.get(Account, row.account_id)
    assert account is not None
    totp_form, recovery_form = CodeForm(prefix="totp"), CodeForm(prefix="recovery")
    if request.method == "GET":
        totp_form.next.data = recovery_form.next.data = target
    status = 200
    try:
        if totp_form.submit_ok("totp"):
            if factors.check_totp(account, totp_form.code.data or ""):
                complete_second_factor(row, "otp")
                return redirect(target)
            db.session.commit()
            flash(_("That code is not right. Check the time on your phone and try again."),
                  "error")
        elif recovery_form.submit_ok("recovery"):
            if use_recovery_code(account, recovery_form.code.data or ""):
                complete_second_factor(row, "otp")
                flash(_("You used a recovery code. %(left)d are left.",
                        left=remaining_recovery_codes(account)), "info")
                return redirect(target)
            db.session.commit()
            flash(_("That recovery code is not right or was used already."), "error")
    except Throttled:
        flash(_("Too many attempts. Please wait a few minutes."), "error")
        status = 429
    kinds = {factor.kind for factor in factors.factors_of(account)}
    return render_template("account_centre/second_factor.html", totp_form=totp_form,
                           recovery_form=recovery_form, kinds=kinds, target=target), status


def complete_second_factor(row: LoginSession, method_amr: str) -> None:
    """The session now signs its account in; amr gains the factor and `mfa`."""
    amr = row.amr.split()
    for value in (method_amr, "mfa"):
        if value not in amr:
            amr.append(value)
    row.amr = " ".join(amr)
    row.second_factor_pending = False
    row.auth_time = utcnow()
    audit.record("session.second_factor", Actor.user(row.account_id), row.account_id,
                 reason=method_amr)
    db.session.commit()
    g.pop("login_session", None)


def _label(account: Account) -> str:
    return account.id[:8]
