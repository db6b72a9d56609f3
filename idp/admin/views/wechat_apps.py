"""Upstream WeChat apps: list and create. A secret goes in and never comes back out."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from idp.admin.blueprint import admin_actor, bp
from idp.admin.forms import WeChatAppForm
from idp.extensions import db
from idp.identity import audit
from idp.wechat.apps import WeChatAppExists, create_wechat_app
from idp.wechat.models import WeChatApp


@bp.route("/wechat-apps", methods=["GET", "POST"])
def wechat_apps() -> Any:
    form = WeChatAppForm()
    if form.validate_on_submit():
        try:
            app = create_wechat_app(form.kind.data or "", form.appid.data or "",
                                    form.secret.data or "", (form.name.data or "").strip())
        except WeChatAppExists:
            flash(_("A WeChat app with that AppID exists already."), "error")
        else:
            audit.record("admin.wechat_app_create", admin_actor(), None, appid=app.appid,
                         kind=app.kind)
            db.session.commit()
            flash(_("WeChat app %(appid)s added.", appid=app.appid), "info")
            return redirect(url_for("admin.wechat_apps"))
    form.secret.data = ""  # never echoed back into the page
    apps = db.session.scalars(select(WeChatApp).order_by(WeChatApp.created_at.desc())).all()
    return render_template("admin/wechat_apps.html", apps=apps, form=form)
