"""A `WeChatClient` for one configured WeChat app, with its secret and the shared token cache."""

from __future__ import annotations

import logging

from flask import current_app

from idp.extensions import db
from idp.wechat.apps import app_secret
from idp.wechat.client import DEFAULT_API_BASE, WeChatClient, pooled_session
from idp.wechat.models import WeChatApp
from idp.wechat.store import shared_token_store

logger = logging.getLogger("idp.wechat_login")

# WeChat is usually quick; a login page should not hang on it for long.
DEFAULT_TIMEOUT = (3.05, 5.0)


class AppNotConfigured(Exception):
    """No WeChat app of that appid and kind is registered (`idp wechat-apps create`)."""

    def __init__(self, appid: str | None, kind: str) -> None:
        super().__init__(f"no {kind} WeChat app {appid!r} is registered")
        self.appid = appid
        self.kind = kind


def configured_app(appid: str | None, kind: str) -> WeChatApp:
    app = db.session.get(WeChatApp, appid) if appid else None
    if app is None or app.kind != kind:
        raise AppNotConfigured(appid, kind)
    return app


def client_for(app: WeChatApp) -> WeChatClient:
    """Close it after use (`with closing(client_for(app)) as client:`): closing leaves the
    process's pooled keep-alive connections (`pooled_session`) open for the next call."""
    config = current_app.config
    timeout = tuple(config.get("IDP_WECHAT_TIMEOUT") or DEFAULT_TIMEOUT)
    api_base = config.get("IDP_WECHAT_API_BASE") or DEFAULT_API_BASE
    return WeChatClient(
        api_base,
        app.appid,
        app_secret(app),
        shared_token_store(current_app._get_current_object()),  # type: ignore[attr-defined]
        timeout=(float(timeout[0]), float(timeout[1])),
        session=pooled_session(api_base),
        on_call=current_app.extensions.get("idp_wechat_on_call"),
    )
