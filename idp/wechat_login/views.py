"""Wiring of WeChat sign-in into the app: routes, the token-exchange grant (registered into the
protocol's server), the login page's button, discovery."""

from __future__ import annotations

from flask import Flask, request, url_for

from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.wechat_login import phone_views, token_exchange, website, website_views  # noqa: F401
from idp.wechat_login.blueprint import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    token_exchange.register_grant(app)
    app.extensions["idp_wechat_login_url"] = wechat_login_url
    grant_types = app.extensions.setdefault("idp_extra_grant_types", [])
    if TOKEN_EXCHANGE not in grant_types:
        grant_types.append(TOKEN_EXCHANGE)


def wechat_login_url() -> str | None:
    """For the login page's "Sign in with WeChat" button: None when no website app exists."""
    if website.website_app() is None:
        return None
    return url_for("wechat_login.start", next=request.values.get("next") or None)
