"""Wiring of WeChat sign-in into the app: routes, the token-exchange grant (registered into the
protocol's server), the login page's button, discovery."""

from __future__ import annotations

from flask import Flask, request, url_for

from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.wechat_login import (  # noqa: F401 - routes
    mfa_exchange,
    official_account,
    official_account_views,
    phone_views,
    scan_views,
    token_exchange,
    website,
    website_views,
)
from idp.wechat_login.blueprint import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    token_exchange.register_grant(app)
    mfa_exchange.register_grant(app)
    app.extensions["idp_wechat_login_url"] = wechat_login_url
    app.extensions["idp_wechat_auto_login_url"] = official_account_views.automatic_start_url
    # The login page includes the scan box when this says where its code is.
    app.jinja_env.globals["wechat_scan_code_url"] = scan_views.scan_code_url
    grant_types = app.extensions.setdefault("idp_extra_grant_types", [])
    if TOKEN_EXCHANGE not in grant_types:
        grant_types.append(TOKEN_EXCHANGE)


def wechat_login_url() -> str | None:
    """For the login page's "Sign in with WeChat" button: inside WeChat's browser the Official
    Account's authorization (one cannot scan one's own screen), elsewhere the QR connect; None
    when no app fits."""
    next_url = request.values.get("next") or None
    if official_account.inside_wechat() and official_account.official_account_app() is not None:
        return url_for("wechat_login.oa_start", next=next_url)
    if website.website_app() is None:
        return None
    return url_for("wechat_login.start", next=next_url)
