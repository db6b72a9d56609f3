"""The merge offered when the WeChat being bound (`wechat_bind`) belongs to another account.

Nothing moves silently. The user, who has just proved both accounts (this one by a session
signed in within IDP_REAUTH_SECONDS, `fresh_auth`; the other by WeChat's login), is shown a
preview — which account survives (the older, rule 6 of `identity.rules`), what moves — and may
confirm the merge. The engine checks it under rule `same_wechat_unionid` (WeChat reported the
unionid the other account holds), so the usual refusals apply (two different WeChat users, a
disabled account…). Without a unionid there is no rule to rest on: the refusal says to ask an
admin.
"""

from __future__ import annotations

import time
from typing import Any

from flask import flash, redirect, render_template, session, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, fresh_auth, me, signed_in
from idp.account_centre.forms import ActionForm
from idp.account_centre.ways import ways_in
from idp.accounts.sessions import current_session, start_session
from idp.extensions import db
from idp.identity.accounts import identities_of
from idp.identity.audit import Actor
from idp.identity.merge import merge_accounts
from idp.identity.models import Account, IdentityKind
from idp.identity.rules import MergeRefused, MergeRule, Proof, ProofMethod, choose_survivor
from idp.wechat_login import official_account, website

MERGE_OFFER_KEY = "account_centre_wechat_merge"
OFFER_TTL = 600
CHANNELS = (website.CHANNEL, official_account.CHANNEL)


def offer_merge(other: Account, visitor: website.WeChatVisitor, held_unionid: str | None) -> Any:
    """Keeps what WeChat proved, for this browser, and shows the preview. `held_unionid`: the
    unionid WeChat reported, when one of the two accounts holds it (the merge rests on it)."""
    session[MERGE_OFFER_KEY] = {"other": other.id, "unionid": held_unionid or "",
                                "openid": visitor.openid, "appid": visitor.appid,
                                "channel": visitor.channel, "at": int(time.time())}
    return redirect(url_for("account_centre.bind_wechat_merge"))


@bp.route("/ways/wechat/merge", methods=["GET", "POST"])
@signed_in
@fresh_auth
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
        return _merge(account, survivor, loser, offer)
    return render_template(
        "account_centre/wechat_merge.html", form=form, survivor=survivor, loser=loser,
        this_account=account, moving=ways_in(identities_of(loser)),
        mergeable=bool(offer.get("unionid")),
    )


def _merge(account: Account, survivor: Account, loser: Account, offer: dict[str, Any]) -> Any:
    if not offer.get("unionid"):
        flash(_("These accounts cannot be merged here. An admin can merge them for you."),
              "error")
        return redirect(url_for("account_centre.overview")), 303
    proof = Proof(kind=IdentityKind.WECHAT_UNIONID, value=str(offer["unionid"]),
                  method=ProofMethod.WECHAT_LOGIN,
                  note="bound from the account centre; both accounts proved by their user")
    here = current_session()
    assert here is not None  # `signed_in`
    amr = sorted(set(here.amr.split() + ["wechat"]))
    proved_at = here.auth_time
    try:
        merge_accounts(survivor, loser, rule=MergeRule.SAME_WECHAT_UNIONID, proof=proof,
                       actor=Actor.user(account.id))
    except MergeRefused:
        flash(_("These accounts cannot be merged: they belong to two different WeChat "
                "users, or one is disabled. An admin can look at it."), "error")
        return redirect(url_for("account_centre.overview")), 303
    # The merge ended the merged-away account's sessions: go on as the survivor.
    channel = offer.get("channel")
    row = start_session(survivor, amr=amr,
                        channel=channel if channel in CHANNELS else website.CHANNEL)
    # A new session, not a new proof: it is as recent as the one it replaces, so the merge
    # cannot refresh a session for the next sensitive change (`fresh_auth`).
    row.auth_time = proved_at
    db.session.commit()
    flash(_("The two accounts are now one."), "info")
    return redirect(url_for("account_centre.overview")), 303
