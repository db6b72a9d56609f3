"""Change the phone number: re-authentication within the last minutes (`fresh_auth`), then an
SMS code to the new number; the engine (`identity.phone_change`) swaps the numbers."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, session, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, fresh_auth, me, signed_in
from idp.account_centre.forms import CodeForm, NewPhoneForm
from idp.account_centre.reauth import mask_phone, verified_phone
from idp.accounts import sms_codes
from idp.accounts.sms_request import CodeRefused, request_code
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.phone_change import PhoneTaken, SamePhone, change_phone
from idp.identity.phones import InvalidPhoneNumber, normalize_phone

CHANGE_PHONE_SMS = "change_phone"
PENDING_KEY = "account_centre_new_phone"


@bp.route("/phone", methods=["GET", "POST"])
@signed_in
@fresh_auth
def phone() -> Any:
    account = me()
    form = NewPhoneForm()
    if form.validate_on_submit():
        try:
            number = normalize_phone(form.phone.data or "")
        except InvalidPhoneNumber:
            flash(_("Please enter a valid phone number."), "error")
            return render_template("account_centre/phone.html", form=form), 400
        if number == verified_phone(account):
            flash(_("That is already your phone number."), "error")
            return render_template("account_centre/phone.html", form=form), 400
        try:
            # The limits, allowed countries and provider of every SMS (accounts/sms_request.py);
            # the code is bound to this browser.
            request_code(number, CHANGE_PHONE_SMS, None, signed_in=True)
        except CodeRefused as refused:
            flash(refused.message, "error")
            page = render_template("account_centre/phone.html", form=form)
            retry = {"Retry-After": str(refused.retry_after)} if refused.retry_after else {}
            return page, refused.status, retry
        session[PENDING_KEY] = {"account": account.id, "phone": number}
        return redirect(url_for("account_centre.phone_confirm")), 303
    current = verified_phone(account)
    return render_template("account_centre/phone.html", form=form,
                           current=mask_phone(current) if current else None)


@bp.route("/phone/confirm", methods=["GET", "POST"])
@signed_in
@fresh_auth
def phone_confirm() -> Any:
    account = me()
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or pending.get("account") != account.id:
        return redirect(url_for("account_centre.phone"))
    number = str(pending.get("phone"))
    form = CodeForm()
    if form.validate_on_submit():
        if not sms_codes.check_code(number, CHANGE_PHONE_SMS, form.code.data or "",
                              sms_codes.browser_binding()):
            flash(_("That code is not right or has expired."), "error")
        else:
            db.session.commit()  # the code is spent whatever happens next
            session.pop(PENDING_KEY, None)
            try:
                change_phone(account, number, Actor.user(account.id))
            except PhoneTaken:
                flash(_("That number belongs to another account. Sign in with it to manage "
                        "that account, or ask support to merge the two."), "error")
                return redirect(url_for("account_centre.phone")), 303
            except SamePhone:
                flash(_("That is already your phone number."), "error")
                return redirect(url_for("account_centre.phone")), 303
            flash(_("Your phone number is now %(phone)s.", phone=mask_phone(number)), "info")
            return redirect(url_for("account_centre.overview")), 303
    return render_template("account_centre/phone_confirm.html", form=form,
                           phone=mask_phone(number))
