"""Sign-in inside WeChat's browser (Official Account web authorization): the start, the
callback, and the automatic silent start of the login page. Thin: parse, call
`official_account`, render; a new visitor's choice reuses the website's pages."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, request, url_for

from idp.accounts.views import safe_next
from idp.identity.links import AccountUnavailable
from idp.identity.rules import MergeRefused
from idp.oidc.context import issuer
from idp.wechat.errors import WeChatError
from idp.wechat_login import official_account, website
from idp.wechat_login.blueprint import bp
from idp.wechat_login.callback_errors import page_for
from idp.wechat_login.website_views import _message, _sign_in


@bp.get("/login/wechat/oa")
def oa_start() -> Any:
    app = official_account.official_account_app()
    if app is None:
        abort(404)
    automatic = request.args.get("auto") == "1"
    scope = official_account.scope_for_next_start(automatic)
    callback = f"{issuer()}/login/wechat/oa/callback"
    next_url = safe_next(request.args.get("next"))
    return redirect(official_account.begin(app, scope, next_url, callback, automatic))


@bp.get("/login/wechat/oa/callback")
def oa_callback() -> Any:
    try:
        pending = official_account.take_state(request.args.get("state"))
    except website.StateRefused:
        return _message("expired", 400)
    app = official_account.official_account_app()
    if app is None:
        abort(404)
    code = request.args.get("code")
    if not code:
        if pending.automatic:
            return _back_to_login_page(pending.next_url)
        return _message("refused", 200)
    try:
        visitor = official_account.visitor_from_code(app, code[:512], pending.scope)
    except website.SnapshotUser:
        return _message("snapshot", 200)
    except WeChatError as error:
        page = page_for(error, app.appid)  # 40029/40163: invalid_grant; logs the rest
        restart = url_for("wechat_login.oa_start", next=pending.next_url or None)
        return _message(page.kind, page.status, restart)
    if website.known_account(visitor) is None:
        return _unknown_visitor(visitor, pending)
    try:
        account = website.account_for(visitor)
    except (MergeRefused, AccountUnavailable):
        return _message("not_allowed", 403)
    return _sign_in(account, ["wechat"], pending.next_url, official_account.CHANNEL)


def _unknown_visitor(
    visitor: website.WeChatVisitor, pending: official_account.PendingAuthorization
) -> Any:
    if pending.scope == official_account.SILENT_SCOPE:
        # Nobody yet: the automatic start falls back to the normal page; a click asks WeChat
        # for the profile (snsapi_userinfo) to offer "create" or "link".
        official_account.remember_unknown()
        if pending.automatic:
            return _back_to_login_page(pending.next_url)
        return redirect(url_for("wechat_login.oa_start", next=pending.next_url or None))
    website.keep_visitor(visitor, pending.next_url)
    return redirect(url_for("wechat_login.choose"))


def _back_to_login_page(next_url: str) -> Any:
    return redirect(url_for("accounts.login", next=next_url or None))


def automatic_start_url() -> str | None:
    """For the login page: where to go at once inside WeChat, when the setting asks for it."""
    if not official_account.automatic_start_allowed():
        return None
    if official_account.official_account_app() is None:
        return None
    return url_for("wechat_login.oa_start", auto="1", next=request.args.get("next") or None)
