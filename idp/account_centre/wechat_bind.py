"""Bind WeChat from the account centre: by the website's QR connect in an ordinary browser, by
the Official Account's web authorization (snsapi_base, silent) inside WeChat's own browser
(`wechat_offer`). Binding starts only with the page's button (a POST with the CSRF token) in a
session that proved who it is within IDP_REAUTH_SECONDS (`fresh_auth`); its state is bound to
that session. Both ways come back to one callback, and WeChat's login proves the ids the same
way, so one function (`take_in`) decides what happens:

- ids held by nobody: they join this account (`link_wechat_to_account`, audited as the user's);
- all held by this account already: nothing to do;
- any held by another account: nothing moves silently; the merge is offered (`wechat_merge`).

The state lives in the Flask session under the bind's own key (`redirect_state`): bound to this
browser and to the account that started, spent once, and never interchangeable with a sign-in
flow's state. A signed-out browser at the callback is sent to sign in and binds nothing.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, fresh_auth, me, signed_in
from idp.account_centre.forms import ActionForm
from idp.account_centre.wechat_merge import offer_merge
from idp.account_centre.wechat_offer import bind_offer, works_elsewhere_message
from idp.accounts.sessions import current_account, current_session
from idp.extensions import db
from idp.identity.accounts import IdentityTaken
from idp.identity.links import AccountUnavailable
from idp.identity.models import Account
from idp.identity.rules import MergeRefused
from idp.identity.transactions import StaleState
from idp.oidc.context import issuer
from idp.wechat.errors import WeChatError
from idp.wechat.models import WeChatApp, WeChatAppKind
from idp.wechat_login import official_account, redirect_state, website
from idp.wechat_login.errors import oauth_error_for

STATE_KEY = "account_centre_wechat_bind_state"
# WeChat's codes live 5 (Official Account) to 10 minutes (QR connect); so does the state.
STATE_TTL = 600
CALLBACK_PARAMETERS = ("code", "state")


@bp.get("/ways/wechat")
@signed_in
@fresh_auth
def bind_wechat() -> Any:
    """The page with the button: a GET binds nothing (a page that sends a signed-in visitor of
    WeChat's browser here must not bind that browser's WeChat silently, ASVS V4.2.2)."""
    offer = bind_offer()
    if offer is None:
        abort(404)
    if offer.app is None:
        flash(works_elsewhere_message(offer.works_in or ""), "error")
        return redirect(url_for("account_centre.overview"))
    return render_template("account_centre/wechat_bind.html", form=ActionForm(),
                           via=offer.app.kind)


@bp.post("/ways/wechat")
@signed_in
@fresh_auth(back="account_centre.bind_wechat")
def start_wechat_bind() -> Any:
    """The button: a POST with the CSRF token, in a session signed in within the last
    minutes (`fresh_auth`), sends the browser to WeChat."""
    if not ActionForm().validate_on_submit():
        abort(400)
    offer = bind_offer()
    if offer is None:
        abort(404)
    if offer.app is None:
        flash(works_elsewhere_message(offer.works_in or ""), "error")
        return redirect(url_for("account_centre.overview")), 303
    app = offer.app
    here = current_session()
    assert here is not None  # `signed_in`
    callback = f"{issuer()}{url_for('account_centre.bind_wechat_callback')}"
    state = redirect_state.issue_state(STATE_KEY, appid=app.appid, account=me().id,
                                       session=here.id)
    if app.kind == WeChatAppKind.OFFICIAL_ACCOUNT:
        # snsapi_base: silent, and the openid (with the unionid when the Official Account is
        # on the Open Platform) is all a binding needs.
        return redirect(official_account.authorize_url(
            app, official_account.SILENT_SCOPE, callback, state), 303)
    return redirect(website.qrconnect_url(app, callback, state), 303)


@bp.get("/ways/wechat/callback")
def bind_wechat_callback() -> Any:
    if any(len(request.args.getlist(name)) > 1 for name in CALLBACK_PARAMETERS):
        abort(400, _("A parameter appears more than once."))
    account = current_account()
    if account is None:
        # Not `signed_in`'s detour: the code and state would ride along in `next`.
        session.pop(STATE_KEY, None)
        flash(_("Please sign in, then add WeChat again."), "info")
        return redirect(url_for("accounts.login", next=url_for("account_centre.overview")))
    app = _app_of_state(account)
    if app is None:
        flash(_("That WeChat sign-in expired. Please try again."), "error")
        return _back()
    code = request.args.get("code")
    if not code:
        flash(_("WeChat was not added: the sign-in was cancelled."), "error")
        return _back()
    try:
        visitor = _visitor_from_code(app, code[:512])
    except website.SnapshotUser:
        flash(_("WeChat could not tell who you are on this preview page. Open the page in "
                "full and try again."), "error")
        return _back()
    except WeChatError as error:
        oauth_error_for(error, app.appid)  # logs what an operator must fix (a bad secret…)
        flash(_("WeChat did not answer as expected. Please try again later."), "error")
        return _back()
    return take_in(account, visitor)


def _app_of_state(account: Account) -> WeChatApp | None:
    """The app the spent state was issued for, if it was issued to this account in this very
    session: the one that had just proved who it is when it pressed the button (`fresh_auth`),
    not a later or an older one."""
    try:
        issued = redirect_state.take_state(STATE_KEY, request.args.get("state"), STATE_TTL)
    except redirect_state.StateRefused:
        return None
    here = current_session()
    if issued.get("account") != account.id or here is None or issued.get("session") != here.id:
        return None
    return db.session.get(WeChatApp, str(issued.get("appid") or ""))


def _visitor_from_code(app: WeChatApp, code: str) -> website.WeChatVisitor:
    if app.kind == WeChatAppKind.OFFICIAL_ACCOUNT:
        return official_account.visitor_from_code(app, code, official_account.SILENT_SCOPE)
    return website.visitor_from_code(app, code)


def take_in(account: Account, visitor: website.WeChatVisitor) -> Any:
    """What happens with the WeChat user just proved at the bind callback, whichever app
    proved them."""
    by_unionid, by_openid = website.holders(visitor)
    other = next((holder for holder in (by_unionid, by_openid)
                  if holder is not None and holder.id != account.id), None)
    if other is not None:
        # The rule rests on a unionid one of the two accounts holds; one nobody holds yet
        # proves nothing about the other account.
        return offer_merge(other, visitor, visitor.unionid if by_unionid is not None else None)
    if by_openid is not None and (by_unionid is not None or not visitor.unionid):
        flash(_("This WeChat is already one of your ways in."), "info")
        return _back()
    try:
        website.link_to(account, visitor)
    except MergeRefused:
        flash(_("Your account already has a different WeChat user: remove it first."), "error")
    except (IdentityTaken, StaleState, AccountUnavailable):
        db.session.rollback()
        flash(_("WeChat was not added. Please try again."), "error")
    else:
        flash(_("WeChat added: you can now sign in with it."), "info")
    return _back()


def _back() -> Any:
    return redirect(url_for("account_centre.overview"))
