"""Signing in inside WeChat's own browser through an Official Account (网页授权).

`snsapi_base` first: silent, and enough for a returning user (openid, and the unionid when the
Official Account is bound to the Open Platform, which finds the account the mini-program made).
Only when nobody is known does the user go round again with `snsapi_userinfo`, which asks and
yields a nickname and an avatar. The state and what the silent round found live in the Flask
session, so they stay with this browser.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import current_app, request, session
from sqlalchemy import select

from idp.extensions import db
from idp.wechat.models import WeChatApp, WeChatAppKind
from idp.wechat_login import redirect_state
from idp.wechat_login.upstream import client_for
from idp.wechat_login.website import DEFAULT_OPEN_BASE, SnapshotUser, WeChatVisitor

CHANNEL = "officialaccount"
SILENT_SCOPE = "snsapi_base"
PROFILE_SCOPE = "snsapi_userinfo"
STATE_KEY = "wechat_oa_state"
# Set when the silent round found no account: the next start asks (snsapi_userinfo) at once,
# and the automatic start stays off so the login page does not bounce back and forth.
UNKNOWN_KEY = "wechat_oa_unknown"
STATE_TTL = 600
USER_AGENT_MARK = "MicroMessenger"


@dataclass(frozen=True)
class PendingAuthorization:
    next_url: str
    scope: str
    automatic: bool


def official_account_app() -> WeChatApp | None:
    """The Official Account app (the oldest, should several be registered)."""
    return db.session.scalars(
        select(WeChatApp)
        .where(WeChatApp.kind == WeChatAppKind.OFFICIAL_ACCOUNT)
        .order_by(WeChatApp.created_at, WeChatApp.appid)
    ).first()


def inside_wechat() -> bool:
    """WeChat's browser says so in its User-Agent; outside it the authorize page cannot work."""
    return USER_AGENT_MARK in request.headers.get("User-Agent", "")


def scope_for_next_start(automatic: bool) -> str:
    if session.get(UNKNOWN_KEY) and not automatic:
        return PROFILE_SCOPE
    return SILENT_SCOPE


def automatic_start_allowed() -> bool:
    """The setting is on, we are inside WeChat, a sign-in is pending (`next`: not the bare login
    page a logout lands on, which would sign the user straight back in), and the silent round
    has not already failed for this browser."""
    return (
        _truthy(current_app.config.get("IDP_WECHAT_OA_AUTO_START"))
        and inside_wechat()
        and bool(request.args.get("next"))
        and not session.get(UNKNOWN_KEY)
    )


def begin(app: WeChatApp, scope: str, next_url: str, callback_url: str, automatic: bool) -> str:
    """Issues a sign-in state bound to this browser; returns WeChat's authorize URL."""
    state = redirect_state.issue_state(
        STATE_KEY, next=next_url, scope=scope, automatic=automatic
    )
    return authorize_url(app, scope, callback_url, state)


def authorize_url(app: WeChatApp, scope: str, callback_url: str, state: str) -> str:
    base = current_app.config.get("IDP_WECHAT_OPEN_BASE") or DEFAULT_OPEN_BASE
    query = urlencode(
        {
            "appid": app.appid,
            "redirect_uri": callback_url,
            "response_type": "code",
            "scope": scope,
            "state": state,
        }
    )
    # WeChat's documented shape: the parameters in this order, then #wechat_redirect.
    return f"{base.rstrip('/')}/connect/oauth2/authorize?{query}#wechat_redirect"


def take_state(presented: str | None) -> PendingAuthorization:
    """Checks and spends the sign-in state (one use). Raises StateRefused."""
    issued = redirect_state.take_state(STATE_KEY, presented, STATE_TTL)
    scope = PROFILE_SCOPE if issued.get("scope") == PROFILE_SCOPE else SILENT_SCOPE
    return PendingAuthorization(
        str(issued.get("next") or ""), scope, bool(issued.get("automatic"))
    )


def remember_unknown() -> None:
    session[UNKNOWN_KEY] = True


def visitor_from_code(app: WeChatApp, code: str, scope: str) -> WeChatVisitor:
    """sns/oauth2/access_token, then sns/userinfo when the user allowed it. A snapshot-page
    user (`is_snapshotuser: 1`) is a virtual openid: SnapshotUser, never an account."""
    with closing(client_for(app)) as wechat:
        grant = wechat.oauth2_access_token(code)
        if grant.is_snapshotuser:
            raise SnapshotUser()
        nickname = picture = ""
        unionid = grant.unionid
        if scope == PROFILE_SCOPE:
            profile = wechat.userinfo(grant.access_token, grant.openid)
            nickname, picture = profile.nickname, profile.headimgurl
            unionid = unionid or profile.unionid
    return WeChatVisitor(
        appid=app.appid,
        openid=grant.openid,
        unionid=unionid,
        nickname=nickname,
        picture=picture,
        channel=CHANNEL,
    )


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)
