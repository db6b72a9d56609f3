"""The jobs `idp worker` runs on a schedule beside event delivery, at most one run at a time
across every worker process (a lease on the job's row), each run logged with its outcome.

- `retention` (every `IDP_RETENTION_INTERVAL_SECONDS`): `maintenance/retention.py`;
- `reconciliation` (daily at `IDP_RECONCILIATION_TIME`, UTC "HH:MM"): the identity report,
  stored (`maintenance/reconciliation.py`);
- `usage_rollup` (every `IDP_USAGE_ROLLUP_INTERVAL_SECONDS`): the dashboard's per-day series
  and cross-channel figure (`usage/rollups.py`);
- `account_deletions` (every `IDP_DELETION_INTERVAL_SECONDS`): erases the accounts whose
  deletion grace period has ended (`identity/deletion.py`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite

from idp.extensions import db, rows_matched
from idp.maintenance.models import ScheduledJob
from idp.models_base import utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=30)


@dataclass
class Job:
    name: str
    is_due: Callable[[datetime | None, datetime], bool]
    run: Callable[[], str]  # returns a one-line outcome


def every(setting: str) -> Callable[[datetime | None, datetime], bool]:
    def is_due(last_started: datetime | None, now: datetime) -> bool:
        interval = timedelta(seconds=float(current_app.config[setting]))
        return last_started is None or now - last_started >= interval

    return is_due


def daily_at(setting: str) -> Callable[[datetime | None, datetime], bool]:
    """Due once the day's time has passed and the last run started before it."""

    def is_due(last_started: datetime | None, now: datetime) -> bool:
        hour, minute = (int(part) for part in str(current_app.config[setting]).split(":"))
        today = datetime.combine(now.date(), time(hour, minute), tzinfo=now.tzinfo)
        slot = today if now >= today else today - timedelta(days=1)
        return last_started is None or last_started < slot

    return is_due


def _retention() -> str:
    from idp.maintenance.retention import purge_expired

    return purge_expired().summary()


def _reconciliation() -> str:
    from idp.maintenance.reconciliation import run_reconciliation

    run = run_reconciliation(trigger="worker")
    return f"reconciliation run {run.id}: {run.counts}"


def _usage_rollup() -> str:
    from idp.usage.rollups import refresh_cross_channel, refresh_daily

    rows = refresh_daily()
    return f"{rows} daily rows; cross-channel accounts: {refresh_cross_channel()}"


def _account_deletions() -> str:
    from idp.identity.deletion import execute_due_deletions

    return f"{execute_due_deletions()} accounts erased (grace period over)"


JOBS = (
    Job("retention", every("IDP_RETENTION_INTERVAL_SECONDS"), _retention),
    Job("reconciliation", daily_at("IDP_RECONCILIATION_TIME"), _reconciliation),
    Job("usage_rollup", every("IDP_USAGE_ROLLUP_INTERVAL_SECONDS"), _usage_rollup),
    Job("account_deletions", every("IDP_DELETION_INTERVAL_SECONDS"), _account_deletions),
)


def run_due_jobs(app: Flask, now: datetime | None = None) -> list[str]:
    """Runs each due job this process wins the lease for; returns the names run."""
    ran = []
    for job in JOBS:
        with app.app_context():
            try:
                if _claim(job, now or utcnow()):
                    _run(job)
                    ran.append(job.name)
            except Exception:
                log.exception("scheduled job %s failed", job.name)
                db.session.rollback()
            finally:
                db.session.remove()
    return ran


def _claim(job: Job, now: datetime) -> bool:
    _ensure_row(job.name)
    row = db.session.get(ScheduledJob, job.name)
    if row is None or not job.is_due(row.last_started_at, now):
        db.session.rollback()
        return False
    claimed = rows_matched(
        update(ScheduledJob)
        .where(
            ScheduledJob.name == job.name,
            or_(ScheduledJob.leased_until.is_(None), ScheduledJob.leased_until < now),
            # Nobody started it since we looked: compare-and-set on the start time.
            ScheduledJob.last_started_at.is_(None) if row.last_started_at is None
            else ScheduledJob.last_started_at == row.last_started_at,
        )
        .values(leased_until=now + LEASE, last_started_at=now)
    )
    db.session.commit()
    return bool(claimed)


def _ensure_row(name: str) -> None:
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    db.session.execute(insert(ScheduledJob).values(name=name).on_conflict_do_nothing())
    db.session.commit()


def _run(job: Job) -> None:
    log.info("scheduled job %s started", job.name)
    try:
        outcome = job.run()
    except Exception as error:
        db.session.rollback()
        _finish(job.name, f"failed: {type(error).__name__}")
        raise
    _finish(job.name, outcome)
    log.info("scheduled job %s: %s", job.name, outcome)


def _finish(name: str, outcome: str) -> None:
    db.session.execute(
        update(ScheduledJob)
        .where(ScheduledJob.name == name)
        .values(leased_until=None, last_finished_at=utcnow(), last_outcome=outcome[:255])
    )
    db.session.commit()


def run_scheduler(app: Flask, stop: Any, poll_seconds: float | None = None) -> None:
    """Runs due jobs until `stop` is set: a thread of `idp worker` (and of the embedded
    development worker), beside event delivery so a long job never delays an event."""
    interval = poll_seconds or float(app.config["IDP_SCHEDULE_POLL_SECONDS"])
    while not stop.is_set():
        run_due_jobs(app)
        stop.wait(interval)


def start_scheduler(app: Flask, stop: Any) -> threading.Thread:
    thread = threading.Thread(target=run_scheduler, args=(app, stop),
                              name="idp-scheduled-jobs", daemon=True)
    thread.start()
    return thread


def run_job(app: Flask, name: str) -> str:
    """Runs one job now, whatever its schedule (the `idp maintenance run` command)."""
    job = next(job for job in JOBS if job.name == name)
    with app.app_context():
        _ensure_row(job.name)
        db.session.execute(
            update(ScheduledJob).where(ScheduledJob.name == job.name)
            .values(last_started_at=utcnow(), leased_until=utcnow() + LEASE)
        )
        db.session.commit()
        _run(job)
        row = db.session.get(ScheduledJob, job.name)
        return row.last_outcome or "" if row else ""
