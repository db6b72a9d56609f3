"""IdP browser sessions and one-time SMS codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models_base import UTCDateTime, utcnow


class LoginSession(db.Model):
    """The server side of the IdP session cookie: logout and merges end it here."""

    __tablename__ = "login_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # also the OIDC `sid`
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    amr: Mapped[str] = mapped_column(String(64), default="pwd")  # space-separated
    channel: Mapped[str] = mapped_column(String(32), default="website")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Both indexed for retention (idp/maintenance/retention.py).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class SmsCode(db.Model):
    __tablename__ = "sms_code"
    __table_args__ = (Index("ix_sms_code_phone_purpose", "phone", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(16))  # idp.sms.purposes.Purpose
    code_digest: Mapped[str] = mapped_column(String(64))  # keyed: idp/accounts/sms.py
    # The browser that asked (keyed digest of a value in its session); None: any browser.
    browser_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # retention
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginEvent(db.Model):
    """One row per successful login, by channel: the dashboard's and metrics' raw data."""

    __tablename__ = "login_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(
        String(32)
    )  # website_password, website_wechat, miniprogram
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class TermsAcceptance(db.Model):
    """A user accepted the terms of service and the privacy policy of this version, then."""

    __tablename__ = "terms_acceptance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[str] = mapped_column(String(32))  # website_sms, website_password …
