"""Live sessions: device, network, sign-in method and time; end one, or all others.

Ending goes through the engine (`idp.identity.sign_out`): the session's refresh and access tokens
die with it and relying parties with a back-channel logout URI are told."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, me, path_id, signed_in
from idp.account_centre.devices import describe_device
from idp.account_centre.forms import ActionForm
from idp.accounts.sessions import current_session
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.sign_out import live_sessions, sign_out_other_sessions, sign_out_session

CHANNELS = {
    "website_password": "Password",
    "website_sms": "SMS code",
    "website_wechat": "WeChat QR code",
    "wechat_officialaccount": "WeChat Official Account",
    "miniprogram": "Mini-program",
}


@bp.get("/sessions")
@signed_in
def sessions() -> Any:
    account = me()
    rows = [row for row in live_sessions(account) if not row.second_factor_pending]
    here = current_session()
    return render_template(
        "account_centre/sessions.html",
        rows=[(row, describe_device(row.user_agent), _(CHANNELS.get(row.channel, row.channel)))
              for row in rows],
        here=here.id if here else None, form=ActionForm(),
    )


@bp.post("/sessions/<session_id>/end")
@signed_in
def end_session(session_id: str) -> Any:
    account = me()
    if not ActionForm().validate_on_submit():
        abort(400)
    here = current_session()
    if here is not None and session_id == here.id:
        flash(_("To end this session, sign out."), "error")
        return redirect(url_for("account_centre.sessions")), 303
    if not sign_out_session(account, path_id(session_id), Actor.user(account.id),
                            "account centre"):
        abort(404)
    db.session.commit()
    flash(_("That session has ended."), "info")
    return redirect(url_for("account_centre.sessions")), 303


@bp.post("/sessions/end-others")
@signed_in
def end_other_sessions() -> Any:
    account = me()
    if not ActionForm().validate_on_submit():
        abort(400)
    here = current_session()
    ended = sign_out_other_sessions(account, here.id if here else None, Actor.user(account.id),
                                    "account centre")
    db.session.commit()
    flash(_("%(count)d other sessions ended.", count=ended), "info")
    return redirect(url_for("account_centre.sessions")), 303
