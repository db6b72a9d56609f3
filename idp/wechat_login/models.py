"""Scan-to-sign-in tickets, in the database when Redis is not configured (`scan_tickets.py`).
The mini-program's pending second-factor challenges are `idp.second_factor.models.MfaChallenge`."""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import Model


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
