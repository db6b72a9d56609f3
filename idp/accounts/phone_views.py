"""Adding a phone to an account, or changing it, by SMS code (purposes `bind_phone` and
`change_phone`). The proven phone goes to the identity engine (`bind_verified_phone`): when
another account holds it verified, the two merge by the `same_verified_phone` rule, exactly as a
mini-program's getPhoneNumber does. Changing unlinks the earlier phones once the new one is in."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from idp.accounts import sms
from idp.accounts.forms import PhoneForm
from idp.accounts.profile import bp
from idp.accounts.sessions import current_account
from idp.accounts.sms_request import CodeRefused, request_code
from idp.identity.audit import Actor
from idp.identity.links import bind_verified_phone, unlink_identity
from idp.identity.models import Account, IdentityKind
from idp.identity.phones import InvalidPhoneNumber, normalize_phone
from idp.identity.service import IdentityError, identities_of


class PhoneCodeForm(FlaskForm):
    phone = HiddenField(validators=[DataRequired(), Length(max=32)])
    code = StringField("SMS code", validators=[DataRequired(), Length(min=6, max=6)])


def _purpose(account: Account) -> str:
    verified = [i for i in identities_of(account, IdentityKind.PHONE) if i.verified]
    return "change_phone" if verified else "bind_phone"


@bp.post("/account/phone")
def phone_send() -> Any:
    account = current_account()
    if account is None:
        return redirect(url_for("accounts.login", next=url_for("profile.account_page")))
    form = PhoneForm()
    try:
        if not form.validate_on_submit():
            raise InvalidPhoneNumber("form")
        phone = normalize_phone(form.phone.data or "")
    except InvalidPhoneNumber:
        flash(_("Please enter a valid phone number."), "error")
        return redirect(url_for("profile.account_page"))
    try:
        request_code(phone, _purpose(account), None, signed_in=True)
    except CodeRefused as refused:
        flash(refused.message, "error")
        return redirect(url_for("profile.account_page"))
    return redirect(url_for("profile.phone_confirm", phone=phone))


@bp.route("/account/phone/confirm", methods=["GET", "POST"])
def phone_confirm() -> Any:
    account = current_account()
    if account is None:
        return redirect(url_for("accounts.login", next=url_for("profile.account_page")))
    form = PhoneCodeForm()
    if request.method == "GET":
        form.phone.data = request.args.get("phone", "")[:32]
    elif form.validate_on_submit():
        try:
            phone = normalize_phone(form.phone.data or "")
        except InvalidPhoneNumber:
            phone = "+0"  # matches no code
        purpose = _purpose(account)
        if sms.check_code(phone, purpose, form.code.data or "", sms.browser_binding()):
            return _bound(account, phone, purpose)
        flash(_("That code is not right or has expired."), "error")
    return render_template("accounts/phone_confirm.html", form=form)


def _bound(account: Account, phone: str, purpose: str) -> Any:
    actor = Actor.user(account.id)
    try:
        survivor, merged = bind_verified_phone(account, phone, "sms", actor)
    except IdentityError:
        flash(_("This phone number cannot be added to your account."), "error")
        return redirect(url_for("profile.account_page"))
    if purpose == "change_phone":
        for old in identities_of(survivor, IdentityKind.PHONE):
            if old.value != phone:
                try:
                    unlink_identity(old, actor)
                except IdentityError:
                    pass  # the last way in stays; the account page shows both
    if merged:
        flash(_("This number belonged to another account of yours: the two are now one."), "info")
    else:
        flash(_("Your phone number is saved."), "info")
    if current_account() is None:  # a merge ended this session: sign in to the survivor
        return redirect(url_for("accounts.login", next=url_for("profile.account_page")))
    return redirect(url_for("profile.account_page"))
