"""Website login with WeChat (Open Platform QR connect): the state, the visitor WeChat vouches
for, and what becomes of them — sign in, a new account, or a link to an existing one.

The state (`redirect_state`) and the pending visitor live in the Flask session (a signed
cookie), so they are bound to this browser: a state or a callback URL carried to another
browser is refused.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from flask import current_app, session
from sqlalchemy import select

from idp.extensions import db
from idp.identity.accounts import find_account, set_claim
from idp.identity.audit import Actor
from idp.identity.links import AccountUnavailable, link_wechat_to_account, resolve_wechat_identity
from idp.identity.models import Account, IdentityKind
from idp.wechat.models import WeChatApp, WeChatAppKind
from idp.wechat_login import redirect_state
from idp.wechat_login.redirect_state import StateRefused as StateRefused  # the views catch it
from idp.wechat_login.upstream import client_for

CHANNEL = "website_wechat"
DEFAULT_OPEN_BASE = "https://open.weixin.qq.com"
STATE_KEY = "wechat_login_state"
VISITOR_KEY = "wechat_login_visitor"
# WeChat's QR code and its callback code live 10 minutes; so does our side of the handshake.
STATE_TTL = 600
VISITOR_TTL = 600
CLAIM_SOURCE = "wechat"


class SnapshotUser(Exception):
    """WeChat's snapshot-mode virtual user (`is_snapshotuser: 1`): nobody to give an account."""


@dataclass(frozen=True)
class WeChatVisitor:
    """Who WeChat says is at the browser, before we know their account."""

    appid: str
    openid: str
    unionid: str | None
    nickname: str
    picture: str
    # The login channel recorded for this visitor: the website's QR login, or an Official Account.
    channel: str = CHANNEL


def website_app() -> WeChatApp | None:
    """The website WeChat app (the oldest, should several be registered)."""
    return db.session.scalars(
        select(WeChatApp)
        .where(WeChatApp.kind == WeChatAppKind.WEBSITE)
        .order_by(WeChatApp.created_at, WeChatApp.appid)
    ).first()


# --- the state ----------------------------------------------------------------------------------


def begin(app: WeChatApp, next_url: str, callback_url: str) -> str:
    """Issues a sign-in state bound to this browser; returns the QR-connect URL to send it to."""
    return qrconnect_url(app, callback_url, redirect_state.issue_state(STATE_KEY, next=next_url))


def qrconnect_url(app: WeChatApp, callback_url: str, state: str) -> str:
    base = current_app.config.get("IDP_WECHAT_OPEN_BASE") or DEFAULT_OPEN_BASE
    query = urlencode(
        {
            "appid": app.appid,
            "redirect_uri": callback_url,
            "response_type": "code",
            "scope": "snsapi_login",
            "state": state,
        }
    )
    return f"{base.rstrip('/')}/connect/qrconnect?{query}#wechat_redirect"


def take_state(presented: str | None) -> str:
    """Checks and spends the sign-in state (one use); returns the `next` URL."""
    return str(redirect_state.take_state(STATE_KEY, presented, STATE_TTL).get("next") or "")


# --- the visitor --------------------------------------------------------------------------------


def visitor_from_code(app: WeChatApp, code: str) -> WeChatVisitor:
    """sns/oauth2/access_token, then sns/userinfo. Raises WeChatError or SnapshotUser."""
    with closing(client_for(app)) as wechat:
        grant = wechat.oauth2_access_token(code)
        if grant.is_snapshotuser:
            raise SnapshotUser()
        profile = wechat.userinfo(grant.access_token, grant.openid)
    return WeChatVisitor(
        appid=app.appid,
        openid=grant.openid,
        unionid=grant.unionid or profile.unionid,
        nickname=profile.nickname,
        picture=profile.headimgurl,
    )


def known_account(visitor: WeChatVisitor) -> Account | None:
    """The account the unionid finds, else the one the app's openid finds."""
    if visitor.unionid:
        account = find_account(IdentityKind.WECHAT_UNIONID, visitor.unionid)
        if account is not None:
            return account
    return find_account(IdentityKind.WECHAT_OPENID, visitor.openid, visitor.appid)


def holders(visitor: WeChatVisitor) -> tuple[Account | None, Account | None]:
    """(the account holding the unionid, the account holding this app's openid)."""
    by_unionid = (
        find_account(IdentityKind.WECHAT_UNIONID, visitor.unionid) if visitor.unionid else None
    )
    return by_unionid, find_account(IdentityKind.WECHAT_OPENID, visitor.openid, visitor.appid)


def keep_visitor(visitor: WeChatVisitor, next_url: str) -> None:
    """Between the callback and the user's choice (create, or link with a password)."""
    session[VISITOR_KEY] = {**asdict(visitor), "next": next_url, "at": int(time.time())}


def pending_visitor() -> tuple[WeChatVisitor, str] | None:
    kept: Any = session.get(VISITOR_KEY)
    if not isinstance(kept, dict) or time.time() - int(kept.get("at", 0)) > VISITOR_TTL:
        return None
    try:
        visitor = WeChatVisitor(
            appid=kept["appid"],
            openid=kept["openid"],
            unionid=kept.get("unionid"),
            nickname=kept.get("nickname") or "",
            picture=kept.get("picture") or "",
            channel=str(kept.get("channel") or CHANNEL),
        )
    except (KeyError, TypeError):
        return None
    return visitor, str(kept.get("next") or "")


def forget_visitor() -> None:
    session.pop(VISITOR_KEY, None)


# --- what becomes of them -----------------------------------------------------------------------


def account_for(visitor: WeChatVisitor) -> Account:
    """A known visitor's account (attaching what it lacks, merging on a shared unionid), or a
    new one. Raises MergeRefused, AccountUnavailable."""
    account, _created = resolve_wechat_identity(
        visitor.appid,
        visitor.openid,
        visitor.unionid,
        visitor.channel,
        Actor.system(visitor.channel),
    )
    if not account.is_active:
        raise AccountUnavailable("the account is disabled")
    _remember_profile(account, visitor)
    return account


def link_to(account: Account, visitor: WeChatVisitor) -> Account:
    """The user proved `account` with its password: WeChat's ids join it. Raises IdentityTaken,
    MergeRefused, AccountUnavailable."""
    linked = link_wechat_to_account(
        account, visitor.appid, visitor.openid, visitor.unionid, Actor.user(account.id)
    )
    _remember_profile(linked, visitor)
    return linked


def _remember_profile(account: Account, visitor: WeChatVisitor) -> None:
    # A silent Official Account round (snsapi_base) brings no profile: that says nothing about
    # the nickname and picture WeChat gave before, so they stay.
    if visitor.nickname or visitor.picture:
        set_claim(account, "nickname", visitor.nickname or None, CLAIM_SOURCE)
        set_claim(account, "picture", visitor.picture or None, CLAIM_SOURCE)
    db.session.commit()
