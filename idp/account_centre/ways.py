"""The ways in: every identity of the account, with WeChat shown per app by the app's name, and
unbinding one (refused, with the reason, for the last way in: `identity.rules.check_unlink`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from idp.account_centre.blueprint import bp, fresh_auth, me, signed_in
from idp.account_centre.forms import ActionForm
from idp.account_centre.reauth import mask_phone
from idp.account_centre.wechat_offer import bind_offer, works_elsewhere_message
from idp.extensions import db
from idp.identity.accounts import identities_of
from idp.identity.audit import Actor
from idp.identity.links import unlink_identity
from idp.identity.models import Identity, IdentityKind
from idp.identity.rules import UnlinkRefused, ways_to_log_in
from idp.second_factor.factors import factors_of
from idp.wechat.models import WeChatApp

WECHAT_KINDS = {"website": "WeChat (website QR)", "officialaccount": "WeChat (Official Account)",
                "miniprogram": "WeChat (mini-program)"}


@dataclass
class WayIn:
    identity: Identity
    label: str
    detail: str
    removable: bool


def ways_in(identities: list[Identity]) -> list[WayIn]:
    apps = {app.appid: app for app in db.session.scalars(select(WeChatApp))}
    rows = []
    for identity in identities:
        label, detail = _describe(identity, apps)
        rest = [other for other in identities if other.id != identity.id]
        rows.append(WayIn(identity, label, detail, bool(ways_to_log_in(rest))))
    return rows


def _describe(identity: Identity, apps: dict[str, WeChatApp]) -> tuple[str, str]:
    if identity.kind == IdentityKind.PASSWORD:
        return _("Password"), ""
    if identity.kind == IdentityKind.PHONE:
        return _("Phone"), mask_phone(identity.value)
    if identity.kind == IdentityKind.EMAIL:
        return _("Email"), identity.value
    if identity.kind == IdentityKind.WECHAT_UNIONID:
        return _("WeChat (all apps of one WeChat Open Platform)"), ""
    app = apps.get(identity.namespace)
    kind = _(WECHAT_KINDS.get(app.kind, "WeChat")) if app else _("WeChat")
    return kind, app.name if app and app.name else identity.namespace


@bp.get("/security")
@signed_in
def overview() -> Any:
    account = me()
    identities = identities_of(account)
    factors = factors_of(account)
    return render_template(
        "account_centre/overview.html", account=account, ways=ways_in(identities),
        factors=factors, form=ActionForm(),
        has_password=any(i.kind == IdentityKind.PASSWORD for i in identities),
        wechat_bind=_wechat_bind_offer(),
    )


def _wechat_bind_offer() -> dict[str, str] | None:
    """For the page: `available`, or `elsewhere` with the reason (`wechat_offer`)."""
    offer = bind_offer()
    if offer is None:
        return None
    if offer.app is not None:
        return {"available": offer.app.kind}
    return {"elsewhere": works_elsewhere_message(offer.works_in or "")}


@bp.post("/ways/<int:identity_id>/unbind")
@signed_in
@fresh_auth
def unbind(identity_id: int) -> Any:
    account = me()
    if not ActionForm().validate_on_submit():
        abort(400)
    identity = db.session.get(Identity, identity_id)
    if identity is None or identity.account_id != account.id:
        abort(404)
    try:
        unlink_identity(identity, Actor.user(account.id))
    except UnlinkRefused:
        flash(_("This is your last way to sign in, so it cannot be removed. "
                "Add another way first (a password with your phone, or WeChat)."), "error")
        return redirect(url_for("account_centre.overview")), 303
    flash(_("Removed. It no longer signs you in."), "info")
    return redirect(url_for("account_centre.overview")), 303
