"""A database that does not answer is an outage, not a bug (docs/DEPLOYMENT.md, "When
PostgreSQL is down"): requests are answered 503 with Retry-After (`idp/errors.py`), and the log
says so once per episode instead of a traceback per request.

An episode starts with the first failed request. It ends when the pool opens a new connection
again (after a restart every pooled connection is dead, so the first one that works is new), or
after `QUIET_SECONDS` without a failure: the next failure then starts a new episode and logs
again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from idp.extensions import db

log = logging.getLogger("idp.database")

RETRY_AFTER_SECONDS = 5
QUIET_SECONDS = 60.0


def is_database_outage(error: BaseException) -> bool:
    """The database (or the way to it) failed, rather than our SQL: a refused or dropped
    connection, a server shutting down, an exhausted pool, SQLite's "database is locked"."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sa_exc.DBAPIError) and (
            seen.connection_invalidated
            or isinstance(seen, sa_exc.OperationalError | sa_exc.InterfaceError)
        ):
            return True
        if isinstance(seen, sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class OutageLog:
    """One log line when an outage episode starts and one when it ends; silence in between."""

    def __init__(self, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.quiet_seconds = quiet_seconds
        self._lock = threading.Lock()
        self._since: float | None = None
        self._last_failure = 0.0
        self.failures = 0

    @property
    def in_outage(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            starts = self._since is None or now - self._last_failure > self.quiet_seconds
            if starts:
                self._since, self.failures = now, 0
            self._last_failure = now
            self.failures += 1
        if starts:
            # The class names only: a driver's message may carry the host, user or database.
            cause = getattr(error, "orig", None) or error
            log.error(
                "database unavailable (%s: %s): answering 503 with Retry-After until it is back",
                type(error).__name__,
                type(cause).__name__,
            )

    def reconnected(self) -> None:
        with self._lock:
            since, failures = self._since, self.failures
            self._since, self.failures = None, 0
        if since is not None:
            log.warning(
                "database available again after %.0f s (%d requests answered 503)",
                time.monotonic() - since,
                failures,
            )


def outage_log(app: Flask) -> OutageLog:
    return app.extensions["idp_outage_log"]  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    outages = OutageLog()
    app.extensions["idp_outage_log"] = outages
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _on_connect(_connection: Any, _record: Any) -> None:
        if outages.in_outage:
            outages.reconnected()
