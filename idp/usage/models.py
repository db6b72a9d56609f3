"""One row per (day, metric, label): small, and incremented in place."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db


class UsageCount(db.Model):
    __tablename__ = "usage_count"

    day: Mapped[date] = mapped_column(Date, primary_key=True)  # UTC
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(96), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
