"""Counting, and reading the counts back.

Counts taken during a request are buffered on `g`, then added to a per-process buffer after the
response is built; the buffer is written at most every `IDP_KEY_CACHE_SECONDS` (5 s by default;
0, as in tests, writes after every request), when the dashboard reads the counts, and when the
worker exits. One write per process per window, rather than one transaction per issued token:
at a few thousand tokens a second, every worker upserting the same row was a commit (an fsync)
and a row lock per token. Writes use a connection of their own, so they never join (or commit)
the request's transaction. An upsert (`INSERT … ON CONFLICT DO UPDATE count = count + n`) makes
concurrent increments safe on SQLite and PostgreSQL alike. A lost count is logged and forgotten:
figures must never break a request. A worker killed outright (SIGKILL) loses at most one window.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import Counter
from datetime import date
from typing import Any

from flask import Flask, Response, current_app, g, has_app_context, has_request_context
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from idp.extensions import db
from idp.models_base import utcnow
from idp.oidc.hot_paths.dispatcher import observe
from idp.oidc.hot_paths.http import HotRequest
from idp.usage.models import UsageCount

log = logging.getLogger("idp.usage")

TOKEN_ISSUED = "token_issued"  # label: the grant type
WECHAT_CALL = "wechat_call"  # label: "<path> ok" or "<path> error"


class PendingCounts:
    """This process's counts not yet written, by (day, metric, label)."""

    def __init__(self, app: Flask, interval: float):
        self.app = weakref.ref(app)
        self.interval = interval
        self._lock = threading.Lock()
        self._counts: Counter[tuple[date, str, str]] = Counter()
        self._written_at = time.monotonic()
        _BUFFERS.add(self)

    def add(self, counts: dict[tuple[str, str], int]) -> None:
        today = utcnow().date()
        with self._lock:
            for (metric, label), amount in counts.items():
                self._counts[(today, metric, label)] += amount

    def due(self) -> bool:
        return bool(self._counts) and time.monotonic() - self._written_at >= self.interval

    def flush(self) -> None:
        """Writes what is pending (in an app context)."""
        with self._lock:
            pending, self._counts = self._counts, Counter()
            self._written_at = time.monotonic()
        if pending:
            _write_days(pending)

    def flush_at_exit(self) -> None:
        app = self.app()
        if app is not None and self._counts:
            with app.app_context():
                self.flush()


_BUFFERS: weakref.WeakSet[PendingCounts] = weakref.WeakSet()


@atexit.register
def flush_all() -> None:
    """Every live app's pending counts (worker exit; gunicorn's `worker_exit` calls it too)."""
    for buffer in list(_BUFFERS):
        try:
            buffer.flush_at_exit()
        except Exception:  # noqa: BLE001 - exiting anyway
            log.warning("usage counts lost at exit", exc_info=True)


def pending_counts() -> PendingCounts:
    return current_app.extensions["idp_usage_pending"]


def init_app(app: Flask) -> None:
    app.extensions["idp_wechat_on_call"] = on_wechat_call
    app.extensions["idp_usage_pending"] = PendingCounts(
        app, float(app.config["IDP_KEY_CACHE_SECONDS"])
    )
    app.after_request(_flush)
    observe(app, _count_hot_answer)


def _in_request() -> bool:
    """In a request: Flask's, or one of the protocol's hot endpoints (`idp/oidc/hot_paths`)."""
    return has_request_context() or (has_app_context() and "hot_request" in g)


def count(metric: str, label: str, amount: int = 1) -> None:
    if _in_request():
        g.setdefault("usage_counts", Counter())[(metric, label[:96])] += amount
    else:
        write({(metric, label[:96]): amount})


def on_wechat_call(path: str, errcode: int | None, _seconds: float) -> None:
    """`WeChatClient`'s on_call hook: errcode 0 is a success; anything else, or no answer at
    all (None), is an error."""
    count(WECHAT_CALL, f"{path} {'ok' if errcode == 0 else 'error'}")


def _count_hot_answer(hot_request: HotRequest, endpoint: str, status: int) -> None:
    """Token issuance by grant, seen at the edge (the token endpoint is a hot path,
    `idp/oidc/hot_paths`): a 200 from it issued one. Then the request's counts are buffered."""
    if endpoint == "oidc.token" and status == 200:
        count(TOKEN_ISSUED, (hot_request.form.get("grant_type") or "unknown")[:96])
    _buffer_request_counts()


def _flush(response: Response) -> Response:
    _buffer_request_counts()
    return response


def _buffer_request_counts() -> None:
    counts = g.pop("usage_counts", None)
    if counts:
        buffer = pending_counts()
        buffer.add(counts)
        if buffer.due():
            buffer.flush()


def write(counts: dict[tuple[str, str], int]) -> None:
    """Counts taken outside a request: written at once."""
    today = utcnow().date()
    _write_days({(today, metric, label): amount for (metric, label), amount in counts.items()})


def _write_days(counts: dict[tuple[date, str, str], int]) -> None:
    try:
        with db.engine.begin() as connection:
            for (day, metric, label), amount in counts.items():
                connection.execute(_upsert(connection.dialect.name, day, metric, label, amount))
    except Exception:  # noqa: BLE001 - figures must never break a request
        log.warning("usage counts lost: %s", dict(counts), exc_info=current_app.debug)


def _upsert(dialect: str, day: date, metric: str, label: str, amount: int) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(UsageCount).values(day=day, metric=metric, label=label, count=amount)
    return statement.on_conflict_do_update(
        index_elements=["day", "metric", "label"],
        set_={"count": UsageCount.count + statement.excluded.count},
    )


def daily_counts(metric: str, since: date) -> list[tuple[date, str, int]]:
    # This process's own pending counts first; other processes' arrive within their window.
    pending_counts().flush()
    rows = db.session.execute(
        select(UsageCount.day, UsageCount.label, UsageCount.count)
        .where(UsageCount.metric == metric, UsageCount.day >= since)
        .order_by(UsageCount.day, UsageCount.label)
    ).all()
    return [(day, label, count) for day, label, count in rows]
