"""Login, registration and password reset pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.accounts import sms
from idp.accounts.forms import CodePasswordForm, LoginForm, PhoneForm
from idp.accounts.login import authenticate_throttled
from idp.accounts.passwords import WeakPassword
from idp.accounts.registration import RegistrationRefused, register_with_phone, reset_password
from idp.accounts.sessions import current_account, end_session, start_session
from idp.identity.models import IdentityKind
from idp.identity.phones import InvalidPhoneNumber, normalize_phone
from idp.identity.service import find_account
from idp.security import throttle
from idp.security.throttle import Throttled

bp = Blueprint("accounts", __name__)


def safe_next(target: str | None) -> str:
    """Only a local path: `/x`, never `//host`, `/\\host` or `https://…` (no open redirect)."""
    if not target:
        return url_for("accounts.home")
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 32 for ch in target)
    ):
        return url_for("accounts.home")
    return target


@bp.get("/")
def home() -> Any:
    account = current_account()
    if account is None:
        return redirect(url_for("accounts.login"))
    return redirect(url_for("profile.account_page"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if request.method == "GET":
        automatic = _login_extension("idp_wechat_auto_login_url")
        if automatic:
            return redirect(automatic)  # inside WeChat, when the setting asks for it
        form.next.data = request.args.get("next", "")
        form.identifier.data = request.args.get("login_hint", "")[:254]
    if form.validate_on_submit():
        try:
            account = authenticate_throttled(form.identifier.data or "", form.password.data or "")
        except Throttled as error:
            flash(
                _(
                    "Too many attempts. Try again in %(minutes)d minutes, or reset your password.",
                    minutes=max(1, error.retry_after // 60),
                ),
                "error",
            )
            page = render_template(
                "accounts/login.html", form=form, wechat_login=_wechat_login_url()
            )
            return page, 429, {"Retry-After": str(error.retry_after)}
        if account is not None:
            start_session(account, amr=["pwd"], channel="website_password")
            return redirect(safe_next(form.next.data))
        # One message whatever went wrong: no user enumeration.
        flash(_("The phone/email or password is not right."), "error")
    return render_template("accounts/login.html", form=form, wechat_login=_wechat_login_url())


def _wechat_login_url() -> str | None:
    return _login_extension("idp_wechat_login_url")


def _login_extension(name: str) -> str | None:
    """A URL from a sign-in method plugged into the login page (WeChat's, when installed)."""
    from flask import current_app

    url_builder = current_app.extensions.get(name)
    return url_builder() if url_builder else None


@bp.post("/logout")
def logout() -> Any:
    end_session()
    return redirect(url_for("accounts.login"))


@bp.route("/register", methods=["GET", "POST"])
def register() -> Any:
    return _phone_step("register", "accounts/register.html")


@bp.route("/register/confirm", methods=["GET", "POST"])
def register_confirm() -> Any:
    form = CodePasswordForm()
    if request.method == "GET":
        form.phone.data = request.args.get("phone", "")
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        phone = form.phone.data or ""
        if sms.check_code(phone, "register", form.code.data or ""):
            try:
                account = register_with_phone(phone, form.password.data or "")
            except (RegistrationRefused, WeakPassword):
                # Same answer as a wrong code: whether the phone exists is not revealed here.
                flash(_("That code is not right or has expired."), "error")
            else:
                start_session(account, amr=["pwd", "sms"], channel="website_password")
                return redirect(safe_next(form.next.data))
        else:
            flash(_("That code is not right or has expired."), "error")
    return render_template("accounts/confirm.html", form=form, purpose="register")


@bp.route("/reset", methods=["GET", "POST"])
def reset() -> Any:
    return _phone_step("reset", "accounts/reset.html")


@bp.route("/reset/confirm", methods=["GET", "POST"])
def reset_confirm() -> Any:
    form = CodePasswordForm()
    if request.method == "GET":
        form.phone.data = request.args.get("phone", "")
    if form.validate_on_submit():
        phone = form.phone.data or ""
        account = find_account(IdentityKind.PHONE, phone)
        if account is not None and sms.check_code(phone, "reset", form.code.data or ""):
            try:
                reset_password(account, form.password.data or "")
            except WeakPassword as error:
                flash(str(error), "error")
            else:
                # Proving the phone by SMS is the unlock path of a password lockout.
                throttle.password_by_account.clear(f"{IdentityKind.PHONE}:{phone}")
                flash(_("Your password has been changed. Please sign in."), "info")
                return redirect(url_for("accounts.login"))
        else:
            flash(_("That code is not right or has expired."), "error")
    return render_template("accounts/confirm.html", form=form, purpose="reset")


def _phone_step(purpose: str, template: str) -> Any:
    """Step one of registration and reset: send a code. The answer is the same whether or not
    the phone is registered (no enumeration); the code is only sent when it can be used."""
    form = PhoneForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        try:
            phone = normalize_phone(form.phone.data or "")
        except InvalidPhoneNumber:
            flash(_("Please enter a valid phone number."), "error")
        else:
            try:
                throttle.sms_by_address.check(throttle.client_address())
                throttle.sms_by_phone.check(phone)
            except Throttled as error:
                flash(_("Please wait before asking for another code."), "error")
                page = render_template(template, form=form)
                return page, 429, {"Retry-After": str(error.retry_after)}
            throttle.sms_by_address.hit(throttle.client_address())
            throttle.sms_by_phone.hit(phone)
            registered = find_account(IdentityKind.PHONE, phone) is not None
            if (purpose == "register") != registered:
                sms.send_code(phone, purpose)
            target = (
                "accounts.register_confirm" if purpose == "register" else "accounts.reset_confirm"
            )
            return redirect(url_for(target, phone=phone, next=form.next.data or ""))
    return render_template(template, form=form)
