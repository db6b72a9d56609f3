"""Mini-program sign-in: a `wx.login()` code becomes an account (CONTRACT §5).

WeChat is asked first and the database written after, so a WeChat error leaves nothing behind.
A returning user, the common case, costs one indexed lookup and one round trip of writes (the
ids' last use, the session key, the login record), committed by the caller with the tokens.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

from idp.accounts.sessions import login_record
from idp.extensions import stage_write
from idp.identity.audit import Actor
from idp.identity.links import (
    resolve_wechat_identity,
    returning_wechat_user,
    wechat_identities_used,
)
from idp.identity.models import Account
from idp.identity.status import check_may_hold_tokens
from idp.second_factor.factors import holds_second_factor
from idp.wechat.client import MiniProgramSession
from idp.wechat.models import WeChatAppKind
from idp.wechat_login.session_keys import session_key_upsert
from idp.wechat_login.upstream import configured_client

CHANNEL = "miniprogram"


@dataclass(frozen=True)
class MiniProgramSignIn:
    account: Account
    has_second_factor: bool | None  # None: not read yet (`idp.accounts.sessions`)


def sign_in_with_js_code(appid: str, js_code: str, client_id: str) -> MiniProgramSignIn:
    """The account behind a js_code, with the login's writes staged in the session's
    transaction: the caller commits (the token endpoint, once, with the tokens). Raises
    WeChatError (WeChat said no or said nothing), AppNotConfigured, MergeRefused (the ids
    belong to two different WeChat users' accounts) or AccountUnavailable (the account is
    disabled; DeletionPending: its erasure is scheduled)."""
    with closing(configured_client(appid, WeChatAppKind.MINIPROGRAM)) as wechat:
        # Never retried: a js_code is single-use, and WeChat may have spent it already.
        session = wechat.code_to_session(js_code)
    returning = returning_wechat_user(
        appid, session.openid, session.unionid, also=(holds_second_factor(),)
    )
    if returning is not None:
        account = check_may_hold_tokens(returning.account)
        has_factor: bool | None = bool(returning.also[0])
        touched = [wechat_identities_used(returning.identity_ids)]
    else:
        account = _first_or_changed_login(appid, session)
        has_factor = None
        touched = []  # the engine's transaction marked them used
    for write in (*touched, session_key_upsert(appid, session.openid, session.session_key),
                  login_record(account.id, CHANNEL, client_id)):
        stage_write(write)  # sent with the tokens' writes, at the answer's one commit
    return MiniProgramSignIn(account, has_factor)


def _first_or_changed_login(appid: str, session: MiniProgramSession) -> Account:
    """Creation, attaching a new id, or a merge: the engine's own transaction (committed)."""
    account, _created = resolve_wechat_identity(
        appid, session.openid, session.unionid, CHANNEL, Actor.system(CHANNEL)
    )
    return check_may_hold_tokens(account)
