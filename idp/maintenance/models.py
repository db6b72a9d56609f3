"""When each scheduled job last ran: one row per job, shared by every worker process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import Model
from idp.models_base import UTCDateTime


class ScheduledJob(Model):
    __tablename__ = "scheduled_job"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    # A worker claims a run by moving `leased_until` forward; another worker then skips it.
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_outcome: Mapped[str | None] = mapped_column(String(255), nullable=True)
