"""Bind WeChat from the account centre (website QR connect). WeChat's login proves the ids:

- held by nobody: they join this account (`link_wechat_to_account`);
- held by this account already: nothing to do;
- held by another account: nothing moves silently. The user, who has just proved both accounts
  (this one by its session, the other by WeChat's login), is shown a preview — which account
  survives (the older, rule 6 of `identity.rules`), what moves — and may confirm the merge. The
  engine checks it under rule `same_wechat_unionid` (WeChat reported the unionid the other
  account holds), so the usual refusals apply (two different WeChat users, a disabled account…).
  Without a unionid there is no rule to rest on: the refusal says to ask an admin.
"""

from __future__ import annotations

import time
from typing import Any

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, me, signed_in
from idp.account_centre.forms import ActionForm
from idp.account_centre.ways import ways_in
from idp.accounts.sessions import current_session, start_session
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.links import AccountUnavailable
from idp.identity.merge import merge_accounts
from idp.identity.models import Account, IdentityKind
from idp.identity.rules import MergeRefused, MergeRule, Proof, ProofMethod, choose_survivor
from idp.identity.service import IdentityTaken, identities_of
from idp.identity.transactions import StaleState
from idp.oidc.context import issuer
from idp.wechat.errors import WeChatError
from idp.wechat_login import website

MERGE_OFFER_KEY = "account_centre_wechat_merge"
OFFER_TTL = 600


@bp.get("/ways/wechat")
@signed_in
def bind_wechat() -> Any:
    app = website.website_app()
    if app is None:
        abort(404)
    callback = f"{issuer()}{url_for('account_centre.bind_wechat_callback')}"
    return redirect(website.begin(app, url_for("account_centre.overview"), callback))


@bp.get("/ways/wechat/callback")
@signed_in
def bind_wechat_callback() -> Any:
    account = me()
    try:
        website.take_state(request.args.get("state"))
    except website.StateRefused:
        flash(_("That WeChat sign-in expired. Please try again."), "error")
        return redirect(url_for("account_centre.overview"))
    code = request.args.get("code")
    app = website.website_app()
    if not code or app is None:
        flash(_("WeChat was not added: the sign-in was cancelled."), "error")
        return redirect(url_for("account_centre.overview"))
    try:
        visitor = website.visitor_from_code(app, code[:512])
    except (WeChatError, website.SnapshotUser):
        flash(_("WeChat did not answer as expected. Please try again later."), "error")
        return redirect(url_for("account_centre.overview"))
    holder = website.known_account(visitor)
    if holder is not None and holder.id == account.id:
        flash(_("This WeChat is already one of your ways in."), "info")
        return redirect(url_for("account_centre.overview"))
    if holder is None:
        try:
            website.link_to(account, visitor)
        except MergeRefused:
            flash(_("Your account already has a different WeChat user: remove it first."),
                  "error")
        except (IdentityTaken, StaleState, AccountUnavailable):
            db.session.rollback()
            flash(_("WeChat was not added. Please try again."), "error")
        else:
            flash(_("WeChat added: you can now sign in with it."), "info")
        return redirect(url_for("account_centre.overview"))
    session[MERGE_OFFER_KEY] = {"other": holder.id, "unionid": visitor.unionid or "",
                                "openid": visitor.openid, "appid": visitor.appid,
                                "at": int(time.time())}
    return redirect(url_for("account_centre.bind_wechat_merge"))


@bp.route("/ways/wechat/merge", methods=["GET", "POST"])
@signed_in
def bind_wechat_merge() -> Any:
    account = me()
    offer = session.get(MERGE_OFFER_KEY)
    if not isinstance(offer, dict) or time.time() - int(offer.get("at", 0)) > OFFER_TTL:
        return redirect(url_for("account_centre.overview"))
    other = db.session.get(Account, str(offer.get("other")))
    if other is None or other.id == account.id:
        session.pop(MERGE_OFFER_KEY, None)
        return redirect(url_for("account_centre.overview"))
    survivor = choose_survivor(account, other)
    loser = other if survivor.id == account.id else account
    form = ActionForm()
    if form.validate_on_submit():
        session.pop(MERGE_OFFER_KEY, None)
        if not offer.get("unionid"):
            flash(_("These accounts cannot be merged here. An admin can merge them for you."),
                  "error")
            return redirect(url_for("account_centre.overview")), 303
        proof = Proof(kind=IdentityKind.WECHAT_UNIONID, value=str(offer["unionid"]),
                      method=ProofMethod.WECHAT_LOGIN,
                      note="bound from the account centre; both accounts proved by their user")
        here = current_session()
        amr = sorted(set((here.amr.split() if here else []) + ["wechat"]))
        try:
            merge_accounts(survivor, loser, rule=MergeRule.SAME_WECHAT_UNIONID, proof=proof,
                           actor=Actor.user(account.id))
        except MergeRefused:
            flash(_("These accounts cannot be merged: they belong to two different WeChat "
                    "users, or one is disabled. An admin can look at it."), "error")
            return redirect(url_for("account_centre.overview")), 303
        # The merge ended the merged-away account's sessions: go on as the survivor.
        start_session(survivor, amr=amr, channel=website.CHANNEL)
        flash(_("The two accounts are now one."), "info")
        return redirect(url_for("account_centre.overview")), 303
    return render_template(
        "account_centre/wechat_merge.html", form=form, survivor=survivor, loser=loser,
        this_account=account, moving=ways_in(identities_of(loser)),
        mergeable=bool(offer.get("unionid")),
    )
