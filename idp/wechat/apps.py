"""Registering upstream WeChat apps; their secrets are encrypted at rest and never shown."""

from __future__ import annotations

from flask import current_app

from idp.extensions import db
from idp.wechat.models import WeChatApp, WeChatAppKind


class WeChatAppExists(ValueError):
    pass


def create_wechat_app(kind: str, appid: str, secret: str, name: str = "") -> WeChatApp:
    if kind not in WeChatAppKind.ALL:
        raise ValueError(f"unknown kind {kind!r}")
    if db.session.get(WeChatApp, appid) is not None:
        raise WeChatAppExists(f"WeChat app {appid} already exists")
    box = current_app.extensions["idp_secret_box"]
    app = WeChatApp(
        appid=appid,
        kind=kind,
        name=name,
        secret_encrypted=box.encrypt(secret, context=f"wechat-app:{appid}"),
        secret_hint=secret[-4:],
    )
    db.session.add(app)
    db.session.commit()
    return app


def app_secret(app: WeChatApp) -> str:
    box = current_app.extensions["idp_secret_box"]
    return box.decrypt(app.secret_encrypted, context=f"wechat-app:{app.appid}")
