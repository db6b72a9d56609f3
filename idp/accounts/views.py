"""Login, registration and password reset pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.accounts import sms_codes
from idp.accounts.blueprint import bp
from idp.accounts.forms import CodePasswordForm, LoginForm, PhoneForm
from idp.accounts.login import authenticate_throttled
from idp.accounts.passwords import WeakPassword
from idp.accounts.registration import (
    RegistrationRefused,
    register_with_phone,
    reset_password,
    sign_in_with_proven_phone,
)
from idp.accounts.sessions import current_account, end_session, start_session
from idp.accounts.sms_request import CodeRefused, request_code
from idp.identity.accounts import find_account
from idp.identity.models import IdentityKind
from idp.identity.phones import InvalidPhoneNumber, normalize_phone
from idp.security import throttle
from idp.security.throttle import Throttled
from idp.sms.captcha import CaptchaAnswer


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


def render_login(form: LoginForm | None = None, phone_form: PhoneForm | None = None,
                 captcha_required: bool = False) -> str:
    """The login page: phone + SMS code first, password second. Focus (and a page error's
    description) goes to the form that was just sent: the password form when it failed."""
    focus = "password" if form is not None else "phone"
    form = form or LoginForm(formdata=None)
    phone_form = phone_form or PhoneForm(formdata=None)
    phone_form.next.data = phone_form.next.data or form.next.data
    form.next.data = form.next.data or phone_form.next.data
    return render_template(
        "accounts/login.html", form=form, phone_form=phone_form, focus=focus,
        wechat_login=_wechat_login_url(), captcha=captcha_widget(captcha_required),
    )


def captcha_widget(required: bool) -> dict[str, Any] | None:
    provider = sms_codes.captcha()
    if not required or provider.provider == "none":
        return None
    g.captcha_origin = _origin(current_app.config["IDP_CAPTCHA_JS_URL"])
    return {"provider": provider.provider, "app_id": provider.app_id}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@bp.after_request
def allow_the_captcha_script(response: Any) -> Any:
    """The captcha's script and frame come from the captcha service: only pages that show the
    captcha let them in (the app's default policy allows 'self' only)."""
    origin = g.get("captcha_origin")
    if origin:
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'self' {origin}; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: https: {origin}; frame-src {origin}; connect-src 'self' "
            f"{origin}; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'"
        )
    return response


def captcha_answer(form: PhoneForm) -> CaptchaAnswer | None:
    if not form.captcha_ticket.data:
        return None
    return CaptchaAnswer(form.captcha_ticket.data, form.captcha_randstr.data or "", "")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if request.method == "GET":
        automatic = _login_extension("idp_wechat_auto_login_url")
        if automatic:
            return redirect(automatic)  # inside WeChat, when the setting asks for it
        form.next.data = request.args.get("next", "")
        form.identifier.data = request.args.get("login_hint", "")[:254]
        phone_form = PhoneForm(formdata=None)
        phone_form.next.data = form.next.data
        hint = form.identifier.data or ""
        phone_form.phone.data = hint if hint and "@" not in hint else ""
        return render_login(form, phone_form)
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
            return render_login(form), 429, {"Retry-After": str(error.retry_after)}
        if account is not None:
            start_session(account, amr=["pwd"], channel="website_password")
            return redirect(safe_next(form.next.data))
        # One message whatever went wrong: no user enumeration.
        flash(_("The phone/email or password is not right."), "error")
    return render_login(form)


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
    form, phone = _confirmation_form()
    if phone is not None:
        if not form.accept_terms.data:
            flash(_("Please accept the terms of service and the privacy policy."), "error")
        elif sms_codes.check_code(phone, "register", form.code.data or "",
                                  sms_codes.browser_binding()):
            return _registered(phone, form.password.data or "", form.next.data)
        else:
            flash(_("That code is not right or has expired."), "error")
    return render_template("accounts/confirm.html", form=form, purpose="register")


def _registered(phone: str, password: str, next_url: str | None) -> Any:
    """The code proved the phone. A number that already has an account signs into it (its
    password is left alone: the owner changes it on the account page); a new one registers."""
    if find_account(IdentityKind.PHONE, phone) is not None:
        try:
            account, _created = sign_in_with_proven_phone(phone)
        except RegistrationRefused:
            flash(_("That code is not right or has expired."), "error")
            return redirect(url_for("accounts.register", next=next_url or ""))
        flash(_("This number already had an account: you are signed in to it."), "info")
        start_session(account, amr=["sms"], channel="website_sms")
        return redirect(safe_next(next_url))
    try:
        account = register_with_phone(phone, password)
    except (RegistrationRefused, WeakPassword):
        flash(_("That code is not right or has expired."), "error")
        return redirect(url_for("accounts.register", next=next_url or ""))
    start_session(account, amr=["pwd", "sms"], channel="website_password")
    return redirect(safe_next(next_url))


@bp.route("/reset", methods=["GET", "POST"])
def reset() -> Any:
    return _phone_step("reset", "accounts/reset.html")


@bp.route("/reset/confirm", methods=["GET", "POST"])
def reset_confirm() -> Any:
    form, phone = _confirmation_form()
    if phone is not None:
        account = find_account(IdentityKind.PHONE, phone)
        binding, code = sms_codes.browser_binding(), form.code.data or ""
        if account is None and sms_codes.check_code(phone, "reset", code, binding):
            # The code proved the number: its holder may learn that it has no account.
            flash(_("This number has no account yet: sign in with a code to create one."), "info")
            return redirect(url_for("accounts.login", next=form.next.data or ""))
        if account is not None and sms_codes.check_code(phone, "reset", code, binding):
            try:
                reset_password(account, form.password.data or "")
            except WeakPassword as error:
                flash(str(error), "error")
            else:
                # Proving the phone by SMS is the unlock path of a password lockout.
                throttle.password_by_account.clear(f"{IdentityKind.PHONE}:{phone}")
                flash(_("Your password has been changed. Please sign in."), "info")
                return redirect(url_for("accounts.login", next=form.next.data or ""))
        else:
            flash(_("That code is not right or has expired."), "error")
    return render_template("accounts/confirm.html", form=form, purpose="reset")


def _confirmation_form() -> tuple[CodePasswordForm, str | None]:
    """Step two of registration and reset: the code-and-password form, filled from the link of
    step one on GET; with the phone it names once it is submitted and valid (E.164, or "+0",
    which matches no code, for what is not a phone number)."""
    form = CodePasswordForm()
    if request.method == "GET":
        form.phone.data = request.args.get("phone", "")
        form.next.data = request.args.get("next", "")
    if not form.validate_on_submit():
        return form, None
    try:
        return form, normalize_phone(form.phone.data or "")
    except InvalidPhoneNumber:
        return form, "+0"  # matches no code


def _phone_step(purpose: str, template: str) -> Any:
    """Step one of registration and reset: send a code, whether or not the number has an
    account, so that neither the answer nor its timing tells (no enumeration). Registering a
    number that has an account signs its owner in with the code (the SMS-code sign-in path);
    a reset code for a number without one tells only its holder so."""
    form = PhoneForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
        form.phone.data = request.args.get("phone", "")[:32]
    target = "accounts.register_confirm" if purpose == "register" else "accounts.reset_confirm"
    if form.validate_on_submit():
        try:
            phone = normalize_phone(form.phone.data or "")
        except InvalidPhoneNumber:
            flash(_("Please enter a valid phone number."), "error")
            return render_template(template, form=form, captcha=None), 400
        try:
            request_code(phone, purpose, captcha_answer(form))
        except CodeRefused as refused:
            flash(refused.message, "error")
            return _refused_page(refused, template, form, target, phone)
        return redirect(url_for(target, phone=phone, next=form.next.data or ""))
    return render_template(template, form=form, captcha=None)


def _refused_page(
    refused: CodeRefused, template: str, form: PhoneForm, target: str, phone: str
) -> Any:
    """A refused resend stays on the code page; a refused first request on the phone page."""
    headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else {}
    if form.origin.data == "code" and not refused.captcha_required:
        code_form = CodePasswordForm(formdata=None)
        code_form.phone.data, code_form.next.data = phone, form.next.data
        purpose = "register" if target == "accounts.register_confirm" else "reset"
        page = render_template("accounts/confirm.html", form=code_form, purpose=purpose)
        return page, refused.status, headers
    page = render_template(template, form=form, captcha=captcha_widget(refused.captcha_required))
    return page, refused.status, headers

