"""Re-authentication before a sensitive change: the password, or an SMS code to the account's
own verified phone. Success moves the session's `auth_time` (OIDC Core §2: the time the user
last authenticated), which is what `fresh_auth` checks."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, me, signed_in
from idp.account_centre.forms import ActionForm, CodeForm, PasswordReauthForm
from idp.accounts import passwords, sms_codes
from idp.accounts.sessions import current_session
from idp.accounts.sms_request import CodeRefused, request_code
from idp.accounts.views import safe_next
from idp.extensions import db
from idp.identity import audit
from idp.identity.accounts import identities_of
from idp.identity.audit import Actor
from idp.identity.models import Account, IdentityKind
from idp.models_base import utcnow
from idp.security import throttle
from idp.security.throttle import Throttled

REAUTH_SMS = "login"  # a code to the account's phone proves what a sign-in by SMS proves


def verified_phone(account: Account) -> str | None:
    phones = [i for i in identities_of(account, IdentityKind.PHONE) if i.verified]
    return phones[0].value if phones else None


def mark_reauthenticated(account: Account, method: str) -> None:
    row = current_session()
    assert row is not None
    row.auth_time = utcnow()
    audit.record("session.reauthenticate", Actor.user(account.id), account.id, reason=method)
    db.session.commit()


@bp.route("/reauth", methods=["GET", "POST"])
@signed_in
def reauth() -> Any:
    account = me()
    has_password = bool(identities_of(account, IdentityKind.PASSWORD))
    phone = verified_phone(account)
    password_form = PasswordReauthForm(prefix="pw")
    code_form = CodeForm(prefix="sms")
    send_form = ActionForm(prefix="send")
    target = safe_next(request.values.get("next") or url_for("account_centre.overview"))
    if request.method == "GET":
        password_form.next.data = code_form.next.data = target
    status = 200
    if has_password and password_form.submit_ok("pw"):
        key = f"reauth:{account.id}"
        try:
            throttle.password_by_account.check(key)
        except Throttled:
            flash(_("Too many attempts. Please wait a few minutes."), "error")
            status = 429
        else:
            credentials = identities_of(account, IdentityKind.PASSWORD)
            if any(c.secret_hash and passwords.verify_password(c.secret_hash,
                                                               password_form.password.data or "")
                   for c in credentials):
                throttle.password_by_account.clear(key)
                mark_reauthenticated(account, "password")
                return redirect(target)
            throttle.password_by_account.hit(key)
            flash(_("That password is not right."), "error")
    elif phone and send_form.submit_ok("send"):
        try:
            request_code(phone, REAUTH_SMS, None, signed_in=True)
        except CodeRefused as refused:
            flash(refused.message, "error")
            status = refused.status
        else:
            flash(_("We sent a code to %(phone)s.", phone=mask_phone(phone)), "info")
    elif phone and code_form.submit_ok("sms"):
        if sms_codes.check_code(phone, REAUTH_SMS, code_form.code.data or "",
                                sms_codes.browser_binding()):
            mark_reauthenticated(account, "sms")
            return redirect(target)
        flash(_("That code is not right or has expired."), "error")
    return render_template(
        "account_centre/reauth.html", password_form=password_form if has_password else None,
        code_form=code_form if phone else None, send_form=send_form,
        phone=mask_phone(phone) if phone else None, target=target,
        wechat=_wechat_reauth_url(account, target),
    ), status


def _wechat_reauth_url(account: Account, target: str) -> str | None:
    """Signing in with WeChat again starts a fresh session: that is a re-authentication. Inside
    WeChat's browser through the Official Account (where a QR code cannot be scanned), elsewhere
    through the website's QR connect; offered when the account holds that app's openid (or a
    unionid)."""
    from idp.wechat_login import official_account
    from idp.wechat_login.website import website_app

    if official_account.inside_wechat():
        app, endpoint = official_account.official_account_app(), "wechat_login.oa_start"
    else:
        app, endpoint = website_app(), "wechat_login.start"
    if app is None:
        return None
    held = any(
        (i.kind == IdentityKind.WECHAT_OPENID and i.namespace == app.appid)
        or i.kind == IdentityKind.WECHAT_UNIONID
        for i in identities_of(account) if i.verified
    )
    return url_for(endpoint, next=target) if held else None


def mask_phone(phone: str) -> str:
    """+8613800138000 → +86 138****8000: enough to recognise, not to read out."""
    return f"{phone[:-8]}****{phone[-4:]}" if len(phone) > 8 else phone
