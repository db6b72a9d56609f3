"""One-time SMS codes, login history, terms accepted (the IdP session itself is the engine's:
`idp.identity.models.LoginSession`; second factors are `idp.second_factor.models`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import Model
from idp.models_base import UTCDateTime, utcnow
from idp.sealed_columns import BlindIndexed


class SmsCode(Model):
    __tablename__ = "sms_code"
    __table_args__ = (Index("ix_sms_code_phone_purpose", "phone", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Only the blind index of the phone (idp/field_crypto.py): a code is looked up, never listed.
    phone: Mapped[str] = mapped_column(BlindIndexed("phone", 32))
    purpose: Mapped[str] = mapped_column(String(16))  # idp.sms.purposes.Purpose
    code_digest: Mapped[str] = mapped_column(String(64))  # keyed: idp/accounts/sms_codes.py
    # The browser that asked (keyed digest of a value in its session); None: any browser.
    browser_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # retention
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginEvent(Model):
    """One row per successful login, by channel: the dashboard's and metrics' raw data."""

    __tablename__ = "login_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(
        String(32)
    )  # website_password, website_wechat, miniprogram
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class TermsAcceptance(Model):
    """A user accepted the terms of service and the privacy policy of this version, then."""

    __tablename__ = "terms_acceptance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[str] = mapped_column(String(32))  # website_sms, website_password …
