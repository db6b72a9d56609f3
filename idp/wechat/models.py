"""Upstream WeChat apps, the per-user session_key, and the shared access-token cache."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import Model
from idp.models_base import UTCDateTime, utcnow


class WeChatAppKind:
    MINIPROGRAM = "miniprogram"
    WEBSITE = "website"
    # In-WeChat web authorization (网页授权) of an Official Account (公众号).
    OFFICIAL_ACCOUNT = "officialaccount"
    ALL = (MINIPROGRAM, WEBSITE, OFFICIAL_ACCOUNT)


class WeChatApp(Model):
    __tablename__ = "wechat_app"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120), default="")
    # Encrypted with IDP_ENCRYPTION_KEY; never logged, never shown (last four characters at most).
    secret_encrypted: Mapped[str] = mapped_column(Text)
    secret_hint: Mapped[str] = mapped_column(String(8), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WeChatSessionKey(Model):
    """The latest `session_key` of an openid: replaced at every login, never leaves the IdP."""

    __tablename__ = "wechat_session_key"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    openid: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_key_encrypted: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WeChatAccessToken(Model):
    """`stable_token` cache shared by every process when Redis is not configured."""

    __tablename__ = "wechat_access_token"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_encrypted: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Float)
