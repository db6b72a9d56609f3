"""Scan-to-sign-in tickets, in the database when Redis is not configured (`scan_tickets.py`), and
the mini-program's pending second-factor challenges (`mfa_tokens.py`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import Model
from idp.models_base import UTCDateTime, utcnow


class WeChatScanTicket(Model):
    """One mini-program code shown by one browser: waiting → scanned → confirmed / refused →
    used. Times are epoch seconds, as in Redis, so both stores share one logic."""

    __tablename__ = "wechat_scan_ticket"

    ticket: Mapped[str] = mapped_column(String(32), primary_key=True)  # the code's `scene`
    # SHA-256 of the secret the showing browser keeps in its session: the ticket's owner.
    browser_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # What the confirm page shows: the requesting browser and its network, never the full address.
    site: Mapped[str] = mapped_column(String(200), default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="")
    network: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    # One open long-poll per browser: who holds it, until when.
    poll_until: Mapped[float] = mapped_column(Float, default=0.0)
    # The mini-program whose code shows the ticket: the only one whose users may answer it.
    appid: Mapped[str] = mapped_column(String(32), default="", server_default="")


class MfaChallenge(Model):
    """A token exchange that proved the first factor (WeChat) and waits for the second: the
    `mfa_token` the client was given, as a SHA-256 digest, bound to one client and one account.
    Single use, short-lived, and dead after a few wrong codes (`mfa_tokens.py`)."""

    __tablename__ = "mfa_challenge"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(36))
    # What the first step asked for and proved: carried into the tokens of the second.
    scope: Mapped[str] = mapped_column(Text, default="")
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
