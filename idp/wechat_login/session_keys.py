"""The latest mini-program `session_key` per (appid, openid): encrypted, replaced at every login,
read only to decrypt legacy `encryptedData`. It never leaves the IdP."""

from __future__ import annotations

import functools
from typing import Any

from flask import current_app
from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite

from idp.extensions import Write, db, execute_together
from idp.models_base import utcnow
from idp.wechat.models import WeChatSessionKey

UPSERT_DIALECTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def remember_session_key(appid: str, openid: str, session_key: str) -> None:
    """One statement, in the caller's transaction (the caller commits): an insert that becomes
    an update when the row exists. Concurrent first logins of one openid each write their key,
    the last commit wins, and none fails on the primary key (a read-then-insert did)."""
    execute_together(session_key_upsert(appid, openid, session_key))


def session_key_upsert(appid: str, openid: str, session_key: str) -> Write:
    """`remember_session_key`'s one statement as a Write, for a caller that sends its writes
    together (`idp.extensions.execute_together`)."""
    encrypted = current_app.extensions["idp_secret_box"].encrypt(
        session_key, context=_context(appid, openid)
    )
    # A row this session loaded before is stale now: read it afresh next time.
    cached = db.session.identity_map.get(db.session.identity_key(WeChatSessionKey, (appid, openid)))
    if cached is not None:
        db.session.expire(cached)
    values = {"key_appid": appid, "key_openid": openid, "key_encrypted": encrypted,
              "key_updated_at": utcnow()}
    return _upsert(db.session.get_bind().dialect.name), values


@functools.cache
def _upsert(dialect: str) -> Any:
    table = WeChatSessionKey.__table__
    statement = UPSERT_DIALECTS[dialect](table).values(
        appid=bindparam("key_appid"), openid=bindparam("key_openid"),
        session_key_encrypted=bindparam("key_encrypted"), updated_at=bindparam("key_updated_at"),
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.appid, table.c.openid],
        set_={"session_key_encrypted": statement.excluded.session_key_encrypted,
              "updated_at": statement.excluded.updated_at},
    )


def session_key_of(appid: str, openid: str) -> str | None:
    row = db.session.get(WeChatSessionKey, (appid, openid))
    if row is None:
        return None
    return current_app.extensions["idp_secret_box"].decrypt(
        row.session_key_encrypted, context=_context(appid, openid)
    )


def _context(appid: str, openid: str) -> str:
    return f"wechat-session-key:{appid}:{openid}"
