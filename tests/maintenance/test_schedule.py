"""The scheduled jobs of `idp worker` (idp/maintenance/schedule.py): each runs when due, once
across every worker process, and its outcome is kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import Result

from idp.extensions import db
from idp.identity.accounts import link_identity
from idp.identity.audit import Actor
from idp.identity.models import IdentityKind, ReconciliationRun
from idp.maintenance.models import ScheduledJob
from idp.maintenance.schedule import JOBS, _claim, daily_at, every, run_due_jobs
from idp.models_base import utcnow
from idp.usage.models import UsageSnapshot


def test_every_job_runs_once_when_due_then_waits(app: Any, make_user: Any) -> None:
    make_user(phone="+8613800138000")
    assert run_due_jobs(app) == [
        "retention", "reconciliation", "usage_rollup", "account_deletions"]
    assert run_due_jobs(app) == []  # nothing is due again yet
    rows = {row.name: row for row in db.session.scalars(db.select(ScheduledJob))}
    assert all(row.last_finished_at and row.leased_until is None for row in rows.values())
    assert rows["retention"].last_outcome.startswith("purged")
    assert db.session.get(UsageSnapshot, "cross_channel").data["active"] == 1
    assert db.session.scalar(db.select(ReconciliationRun.trigger)) == "worker"


def test_a_job_is_claimed_by_one_worker_only(app: Any) -> None:
    job = next(job for job in JOBS if job.name == "retention")
    now = utcnow()
    assert _claim(job, now) is True
    assert _claim(job, now) is False  # a second process sees it started (and leased)
    # The lease of a worker that died runs out; the job is due again on its schedule.
    later = now + timedelta(seconds=app.config["IDP_RETENTION_INTERVAL_SECONDS"] + 1)
    row = db.session.get(ScheduledJob, "retention")
    row.leased_until = now - timedelta(seconds=1)
    db.session.commit()
    assert _claim(job, later) is True


def test_daily_time_and_interval_rules(app: Any) -> None:
    app.config["IDP_RECONCILIATION_TIME"] = "03:30"
    due = daily_at("IDP_RECONCILIATION_TIME")
    before = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    after = datetime(2026, 11, 30, 3, 31, tzinfo=UTC)
    assert due(None, before)
    assert not due(datetime(2026, 11, 29, 3, 30, tzinfo=UTC), before)  # yesterday's slot ran
    assert due(datetime(2026, 11, 29, 3, 30, tzinfo=UTC), after)
    assert not due(datetime(2026, 11, 30, 3, 30, tzinfo=UTC), after)
    app.config["IDP_USAGE_ROLLUP_INTERVAL_SECONDS"] = 600
    interval = every("IDP_USAGE_ROLLUP_INTERVAL_SECONDS")
    assert not interval(after - timedelta(seconds=599), after)
    assert interval(after - timedelta(seconds=600), after)


def test_the_command_runs_a_job_now(app: Any, make_user: Any) -> None:
    make_user(phone="+8613800138000")
    other = make_user(phone="+8613800138001")
    link_identity(other, IdentityKind.PHONE, "+8613800138000", Actor.user(other.id),
                  verified=False)
    db.session.commit()
    result: Result = app.test_cli_runner().invoke(args=["maintenance", "run", "reconciliation"])
    assert result.exit_code == 0, result.output
    assert "'shared_unverified_phone': 1" in result.output
