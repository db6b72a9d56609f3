"""A `WeChatClient` for one configured WeChat app, with its secret and the shared token cache."""

from __future__ import annotations

import logging

from flask import current_app

from idp.caching import BoundedCache, versions_for
from idp.extensions import db
from idp.wechat.apps import app_secret
from idp.wechat.client import DEFAULT_API_BASE, WeChatClient
from idp.wechat.models import WeChatApp
from idp.wechat.store import shared_token_store
from idp.wechat.transport import pooled_http

logger = logging.getLogger("idp.wechat_login")

# WeChat is usually quick; a login page should not hang on it for long.
DEFAULT_TIMEOUT = (3.05, 5.0)
MAX_CACHED_APPS = 256


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


def configured_client(appid: str | None, kind: str) -> WeChatClient:
    """`client_for(configured_app(appid, kind))`, from this process's copy of the app while no
    WeChat app changed (`wechat_app` is one of `idp.caching`'s global tables): no query, no
    decryption. Raises AppNotConfigured as `configured_app` does."""
    versions = versions_for("", "") if appid else None
    apps: BoundedCache[tuple[str, str]] = current_app.extensions.setdefault(
        "idp_wechat_apps", BoundedCache(max_entries=MAX_CACHED_APPS)
    )
    known = apps.get(appid, versions) if versions is not None else None
    if known is None:
        app = configured_app(appid, kind)
        known = (app.kind, app_secret(app))
        if versions is not None:
            apps.put(appid, versions, known)
    if known[0] != kind:
        raise AppNotConfigured(appid, kind)
    return _client(appid or "", known[1])


def client_for(app: WeChatApp) -> WeChatClient:
    """Close it after use (`with closing(client_for(app)) as client:`): closing leaves the
    process's pooled keep-alive connections (`pooled_http`) open for the next call."""
    return _client(app.appid, app_secret(app))


def _client(appid: str, secret: str) -> WeChatClient:
    config = current_app.config
    timeout = tuple(config.get("IDP_WECHAT_TIMEOUT") or DEFAULT_TIMEOUT)
    api_base = config.get("IDP_WECHAT_API_BASE") or DEFAULT_API_BASE
    return WeChatClient(
        api_base,
        appid,
        secret,
        shared_token_store(current_app._get_current_object()),  # type: ignore[attr-defined]
        timeout=(float(timeout[0]), float(timeout[1])),
        http=pooled_http(api_base),
        on_call=current_app.extensions.get("idp_wechat_on_call"),
    )
