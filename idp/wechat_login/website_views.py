"""Website login with WeChat: the QR-connect redirect, the callback, and a new visitor's choice
(create an account, or link an existing one with its password). Thin: parse, call `website`,
render."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError, OperationalError

from idp.accounts.login import authenticate_throttled
from idp.accounts.sessions import start_session
from idp.accounts.views import safe_next
from idp.extensions import db
from idp.identity.accounts import IdentityTaken
from idp.identity.links import AccountUnavailable
from idp.identity.models import Account
from idp.identity.rules import MergeRefused
from idp.identity.transactions import StaleState
from idp.oidc.context import issuer
from idp.security.throttle import Throttled
from idp.wechat.errors import WeChatError
from idp.wechat_login import website
from idp.wechat_login.blueprint import bp
from idp.wechat_login.callback_errors import page_for
from idp.wechat_login.forms import CreateAccountForm, LinkAccountForm


@bp.get("/login/wechat")
def start() -> Any:
    app = website.website_app()
    if app is None:
        abort(404)
    callback = f"{issuer()}/login/wechat/callback"
    return redirect(website.begin(app, safe_next(request.args.get("next")), callback))


@bp.get("/login/wechat/callback")
def callback() -> Any:
    try:
        next_url = website.take_state(request.args.get("state"))
    except website.StateRefused:
        return _message("expired", 400)
    code = request.args.get("code")
    if not code:
        return _message("refused", 200)  # the user said no on their phone
    app = website.website_app()
    if app is None:
        abort(404)
    try:
        visitor = website.visitor_from_code(app, code[:512])
    except website.SnapshotUser:
        return _message("snapshot", 200)
    except WeChatError as error:
        page = page_for(error, app.appid)  # logs what an operator must fix
        restart = url_for("wechat_login.start", next=next_url or None)
        return _message(page.kind, page.status, restart)
    account = website.known_account(visitor)
    if account is None:
        website.keep_visitor(visitor, next_url)
        return redirect(url_for("wechat_login.choose"))
    try:
        account = website.account_for(visitor)
    except (MergeRefused, AccountUnavailable):
        return _message("not_allowed", 403)
    return _sign_in(account, ["wechat"], next_url)


@bp.get("/login/wechat/choose")
def choose() -> Any:
    pending = website.pending_visitor()
    if pending is None:
        return redirect(url_for("accounts.login"))
    return _choice_page(pending[0], LinkAccountForm())


@bp.post("/login/wechat/create")
def create_account() -> Any:
    form = CreateAccountForm()
    pending = website.pending_visitor()
    if pending is None or not form.validate_on_submit():
        return _message("expired", 400)
    visitor, next_url = pending
    try:
        account = website.account_for(visitor)
    except (MergeRefused, AccountUnavailable):
        return _message("not_allowed", 403)
    return _sign_in(account, ["wechat"], next_url, visitor.channel)


@bp.post("/login/wechat/link")
def link_account() -> Any:
    form = LinkAccountForm()
    pending = website.pending_visitor()
    if pending is None:
        return _message("expired", 400)
    visitor, next_url = pending
    if not form.validate_on_submit():
        return _choice_page(visitor, form), 400
    try:
        account = authenticate_throttled(form.identifier.data or "", form.password.data or "")
    except Throttled as error:
        flash(_("Too many attempts. Try again later, or reset your password."), "error")
        return _choice_page(visitor, form), 429, {"Retry-After": str(error.retry_after)}
    if account is None:
        # The login page's words: whether the phone or email exists is not revealed.
        flash(_("The phone/email or password is not right."), "error")
        return _choice_page(visitor, form), 400
    try:
        linked = website.link_to(account, visitor)
    except MergeRefused:
        flash(_("That account is already linked to another WeChat user."), "error")
        return _choice_page(visitor, form), 409
    except (IdentityTaken, StaleState, IntegrityError, OperationalError):
        db.session.rollback()
        flash(_("This WeChat user already has an account: sign in with WeChat again."), "error")
        return _choice_page(visitor, form), 409
    except AccountUnavailable:
        return _message("not_allowed", 403)
    return _sign_in(linked, ["pwd", "wechat"], next_url, visitor.channel)


def _sign_in(
    account: Account, amr: list[str], next_url: str, channel: str = website.CHANNEL
) -> Any:
    website.forget_visitor()
    start_session(account, amr=amr, channel=channel)
    return redirect(safe_next(next_url))


def _choice_page(visitor: website.WeChatVisitor, link_form: LinkAccountForm) -> str:
    return render_template(
        "wechat_login/choose.html",
        visitor=visitor,
        create_form=CreateAccountForm(),
        link_form=link_form,
    )


def _message(kind: str, status: int, restart_url: str | None = None) -> tuple[str, int]:
    """A message page; `restart_url` starts the same sign-in again (an expired authorisation)."""
    page = render_template("wechat_login/message.html", kind=kind, restart_url=restart_url)
    return page, status
