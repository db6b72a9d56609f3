"""One-step SMS-code sign-in on the website: phone → code → signed in. A number with an account
signs into it (however the phone was proven: a code here, or WeChat's getPhoneNumber in the
mini-program); a new number gets an account in the same step. `amr` is ["sms"]."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.accounts import sms_codes
from idp.accounts.blueprint import bp
from idp.accounts.forms import PhoneForm, SmsCodeForm
from idp.accounts.registration import RegistrationRefused, sign_in_with_proven_phone
from idp.accounts.sessions import start_session
from idp.accounts.sms_request import CodeRefused, request_code
from idp.accounts.views import captcha_answer, render_login, safe_next
from idp.identity.phones import InvalidPhoneNumber, normalize_phone

CHANNEL = "website_sms"


@bp.post("/login/sms/send")
def sms_login_send() -> Any:
    form = PhoneForm()
    if not form.validate_on_submit():
        flash(_("Please enter a valid phone number."), "error")
        return render_login(phone_form=form), 400
    try:
        phone = normalize_phone(form.phone.data or "")
    except InvalidPhoneNumber:
        flash(_("Please enter a valid phone number."), "error")
        return render_login(phone_form=form), 400
    try:
        request_code(phone, "login", captcha_answer(form))
    except CodeRefused as refused:
        flash(refused.message, "error")
        headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else {}
        if form.origin.data == "code" and not refused.captcha_required:
            page = _code_page(phone, form.next.data or "")
        else:
            page = render_login(phone_form=form, captcha_required=refused.captcha_required)
        return page, refused.status, headers
    return redirect(url_for("accounts.sms_login", phone=phone, next=form.next.data or ""))


@bp.route("/login/sms", methods=["GET", "POST"])
def sms_login() -> Any:
    form = SmsCodeForm()
    if request.method == "GET":
        return _code_page(request.args.get("phone", "")[:32], request.args.get("next", ""))
    if form.validate_on_submit():
        phone = _proper_phone(form.phone.data or "")
        if not form.accept_terms.data:
            flash(_("Please accept the terms of service and the privacy policy."), "error")
        elif sms_codes.check_code(phone, "login", form.code.data or "",
                                  sms_codes.browser_binding()):
            try:
                account, _created = sign_in_with_proven_phone(phone)
            except RegistrationRefused:
                flash(_("That code is not right or has expired."), "error")
            else:
                start_session(account, amr=["sms"], channel=CHANNEL)
                return redirect(safe_next(form.next.data))
        else:
            flash(_("That code is not right or has expired."), "error")
    return render_template("accounts/sms_code.html", form=form, minutes=_minutes()), 400


def _proper_phone(text: str) -> str:
    """The hidden field as sent back; anything that is no phone number matches no code."""
    try:
        return normalize_phone(text)
    except InvalidPhoneNumber:
        return "+0"


def _code_page(phone: str, next_url: str) -> str:
    form = SmsCodeForm(formdata=None)
    form.phone.data, form.next.data = phone, next_url
    return render_template("accounts/sms_code.html", form=form, minutes=_minutes())


def _minutes() -> int:
    return max(1, sms_codes.code_ttl_seconds() // 60)


@bp.get("/terms")
def terms() -> Any:
    """Placeholder pages until the operator points IDP_TERMS_URL / IDP_PRIVACY_URL elsewhere."""
    return render_template("accounts/terms.html", title=_("Terms of service"))


@bp.get("/privacy")
def privacy() -> Any:
    return render_template("accounts/terms.html", title=_("Privacy policy"))
