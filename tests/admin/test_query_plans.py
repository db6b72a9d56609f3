"""Every query behind the admin's pages, the worker's due-events query and the retention
purges has an index-backed plan (issue 18): EXPLAIN on PostgreSQL, over a database seeded in
the shape of a large deployment (bench/scale_seed.py), for each statement a page really runs.

A sequential scan of a small table (clients, WeChat apps, keys, counters) is fine; of a table
that grows with the accounts it is what made pages take seconds at a million accounts.
bench/scale.py times the same pages at a million accounts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from bench.scale_seed import account_id, seed
from idp.events.delivery import deliver_due
from idp.extensions import db
from idp.maintenance.reconciliation import run_reconciliation
from idp.maintenance.retention import purge_expired
from idp.usage.rollups import refresh_cross_channel, refresh_daily
from tests.admin.conftest import AdminBrowser

ACCOUNTS = 4000
GROWING_TABLES = {
    "account", "identity", "profile_claim", "audit_event", "refresh_token", "login_event",
    "login_session", "merge_record", "event_delivery", "authorization_code", "consent",
    "account_alias", "reconciliation_finding", "sms_code",
}
SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")


@contextmanager
def statements() -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith(("SELECT", "DELETE")):
            seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)


def sequential_scans(seen: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """The growing tables some statement can only read whole. With sequential scans priced
    out, the planner falls back to one only where no index serves: at this modest size it may
    rightly prefer one, at a million accounts it must not have to."""
    found = []
    with db.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in seen:
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(
                "EXPLAIN " + statement, parameters))
            for table in SEQ_SCAN.findall(plan):
                if table in GROWING_TABLES:
                    found.append((table, statement[:300]))
    return found


@pytest.fixture
def seeded(backend: str, app: Any) -> None:
    if backend != "postgresql":
        pytest.skip("query plans are checked on PostgreSQL, the production store")
    with db.engine.connect() as connection:
        seed(connection, ACCOUNTS)
    refresh_cross_channel()
    run_reconciliation(trigger="cli")


def test_admin_pages_use_indexes(seeded: None, admin: AdminBrowser) -> None:
    sub = account_id(123)
    pages = [
        "/admin/",
        "/admin/accounts",
        "/admin/accounts?q=%2B8613600000123",  # a phone
        "/admin/accounts?q=136%200000%200123",  # the same, as people type it
        "/admin/accounts?q=o-mini-123",  # an openid
        f"/admin/accounts?q={sub}",  # a sub
        "/admin/accounts?q=user21%40example.com",  # an email
        "/admin/accounts?q=wang",  # a name's beginning
        "/admin/accounts?q=ng%2012",  # part of a name
        "/admin/accounts?q=%E7%94%A8%E6%88%B7",  # a nickname (用户), two characters
        f"/admin/accounts/{sub}",
        "/admin/suggestions",
        "/admin/claims",
        f"/admin/accounts/{sub}/claims",
        "/admin/events",
    ]
    with statements() as seen:
        for page in pages:
            assert admin.get(page).status_code == 200, page
    assert len(seen) > len(pages)
    scans = sequential_scans(seen)
    assert scans == [], "\n".join(f"{t}: {s}" for t, s in scans)


def test_worker_queries_use_indexes(seeded: None) -> None:
    with statements() as seen:
        deliver_due(limit=1)
        purge_expired()
        refresh_daily()  # per-day series, delivery outcomes per sink, weekly conversion
    assert any("event_delivery" in statement for statement, _ in seen)
    assert sum(statement.startswith("DELETE") for statement, _ in seen) >= 8
    scans = sequential_scans(seen)
    assert scans == [], "\n".join(f"{t}: {s}" for t, s in scans)
