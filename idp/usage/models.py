"""One row per (day, metric, label): small, and incremented in place."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import Model
from idp.models_base import UTCDateTime


class UsageCount(Model):
    __tablename__ = "usage_count"

    day: Mapped[date] = mapped_column(Date, primary_key=True)  # UTC
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(96), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class UsageSnapshot(Model):
    """A figure too costly to count per request (cross-channel accounts over millions of
    identities), computed by `idp worker` on a schedule and read by the dashboard."""

    __tablename__ = "usage_snapshot"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
