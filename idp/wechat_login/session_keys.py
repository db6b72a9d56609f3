"""The latest mini-program `session_key` per (appid, openid): encrypted, replaced at every login,
read only to decrypt legacy `encryptedData`. It never leaves the IdP."""

from __future__ import annotations

from flask import current_app

from idp.extensions import db
from idp.models_base import utcnow
from idp.wechat.models import WeChatSessionKey


def remember_session_key(appid: str, openid: str, session_key: str) -> None:
    """Adds to the caller's transaction; the caller commits."""
    encrypted = current_app.extensions["idp_secret_box"].encrypt(
        session_key, context=_context(appid, openid)
    )
    row = db.session.get(WeChatSessionKey, (appid, openid))
    if row is None:
        db.session.add(
            WeChatSessionKey(
                appid=appid, openid=openid, session_key_encrypted=encrypted, updated_at=utcnow()
            )
        )
    else:
        row.session_key_encrypted = encrypted
        row.updated_at = utcnow()


def session_key_of(appid: str, openid: str) -> str | None:
    row = db.session.get(WeChatSessionKey, (appid, openid))
    if row is None:
        return None
    return current_app.extensions["idp_secret_box"].decrypt(
        row.session_key_encrypted, context=_context(appid, openid)
    )


def _context(appid: str, openid: str) -> str:
    return f"wechat-session-key:{appid}:{openid}"
