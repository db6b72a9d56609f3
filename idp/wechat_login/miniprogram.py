"""Mini-program sign-in: a `wx.login()` code becomes an account (CONTRACT §5).

WeChat is asked first and the database written after, so a WeChat error leaves nothing behind.
"""

from __future__ import annotations

from contextlib import closing

from idp.accounts.sessions import record_login
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.links import resolve_wechat_identity
from idp.identity.models import Account
from idp.identity.status import check_may_hold_tokens
from idp.wechat.models import WeChatAppKind
from idp.wechat_login.session_keys import remember_session_key
from idp.wechat_login.upstream import client_for, configured_app

CHANNEL = "miniprogram"


def sign_in_with_js_code(appid: str, js_code: str, client_id: str) -> Account:
    """The account behind a js_code. Raises WeChatError (WeChat said no or said nothing),
    AppNotConfigured, MergeRefused (the ids belong to two different WeChat users' accounts) or
    AccountUnavailable (the account is disabled; DeletionPending: its erasure is scheduled)."""
    app = configured_app(appid, WeChatAppKind.MINIPROGRAM)
    with closing(client_for(app)) as wechat:
        # Never retried: a js_code is single-use, and WeChat may have spent it already.
        session = wechat.code_to_session(js_code)
    account, _created = resolve_wechat_identity(
        appid, session.openid, session.unionid, CHANNEL, Actor.system(CHANNEL)
    )
    check_may_hold_tokens(account)
    remember_session_key(appid, session.openid, session.session_key)
    record_login(account, CHANNEL, client_id)
    db.session.commit()
    return account
