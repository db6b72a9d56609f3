"""A statement as a transaction of its own, on a PostgreSQL connection the thread keeps.

The token endpoint's reads and claims (`idp.oidc.token_statements`) are each whole in one
statement, sent in autocommit. Sent on the request's ORM session they paid for the session
around them: its transaction object, a pool checkout and check-in with their events, autocommit
switched on and off again, the session's removal at the end of the request — ~120 µs of CPU per
request beside the statement's own ~60 (bench/README.md, "Statements alone"). Here each thread
keeps one connection from the engine's pool, in autocommit for good, and sends the statement
through the driver with SQLAlchemy's SQL and conversions (`idp.extensions.driver_form`).

What stays as it was:
- inside a transaction the request's session has open on the server (a row read or written
  through the ORM first), the statement runs in that transaction, on the session's connection
  (`idp.extensions.driver_first`): it sees what the session wrote, and the caller commits;
- a connection the server closed while it rested is replaced before use, as the pool's
  checkout does (`idp.pool_liveness`); one that fails during a statement is discarded and the
  failure raised as SQLAlchemy raises it (`DBAPIError`, `connection_invalidated`), so an outage
  is answered 503 as anywhere else (`idp.outage`);
- SQLAlchemy's `before_cursor_execute` listeners of the engine hear each statement.

A thread's connection goes back to the pool when the thread ends (closed: the pool opens a fresh
one when it next needs it)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from typing import Any

from sqlalchemy import exc as sa_exc

from idp.extensions import (
    STAGED,
    combined,
    db,
    driver_execute,
    driver_first,
    driver_form,
    driver_row,
    driver_rows_alone,
    execute_on_driver,
    open_transaction,
)
from idp.pool_liveness import IDLE_PING_SECONDS, answers, has_news


class _Held:
    """One thread's autocommit connection of one engine."""

    def __init__(self, engine: Any) -> None:
        self.pid = os.getpid()
        self.engine = engine
        self.proxied = engine.raw_connection()  # the pool's checkout (and its liveness check)
        self.driver = self.proxied.driver_connection
        self.driver.autocommit = True
        self.used_at = time.monotonic()
        # Run once: when this object goes (its thread ended) or when it is discarded.
        self.release = weakref.finalize(self, _give_back, self.proxied, self.pid)

    def usable(self) -> bool:
        if self.driver.closed or has_news(self.driver):
            return False
        idle = time.monotonic() - self.used_at
        return idle <= IDLE_PING_SECONDS or answers(self.engine, self.driver)


def _give_back(proxied: Any, pid: int) -> None:
    """Closed and forgotten (the pool does not get an autocommit connection back) — by the
    process that opened it only: closing it in a forked child would end the parent's session
    on the server too. At a thread's end this runs in the collector, where an error has no one
    to reach."""
    if os.getpid() != pid:
        return
    with contextlib.suppress(Exception):
        proxied.invalidate()


_LOCAL = threading.local()


def _held(engine: Any) -> _Held:
    held: _Held | None = getattr(_LOCAL, "held", None)
    if held is not None and held.engine is engine and held.pid == os.getpid():
        if held.usable():
            return held
    if held is not None:
        held.release()
        _LOCAL.held = None
    dbapi = engine.dialect.loaded_dbapi
    try:
        held = _LOCAL.held = _Held(engine)
    except dbapi.Error as error:  # as SQLAlchemy raises a failed connect (an outage: 503)
        raise sa_exc.DBAPIError.instance(
            None, None, error, dbapi.Error, connection_invalidated=True,
            dialect=engine.dialect) from error
    return held


def first_alone(statement: Any, values: dict[str, Any]) -> dict[str, Any] | None:
    """The first row of `statement` (a SELECT, or a write with RETURNING) by column key, each
    value converted as SQLAlchemy would, or None; PostgreSQL only (see the module)."""
    session_connection = _open_session_connection()
    if session_connection is not None:
        return driver_first(session_connection, statement, values)
    row = _execute(statement, values).fetchone()
    return None if row is None else driver_row(statement, db.engine.dialect, row)


def execute_alone(statement: Any, values: dict[str, Any]) -> int:
    """`statement` (a write without RETURNING) as `first_alone` sends it: the rows it matched."""
    session_connection = _open_session_connection()
    if session_connection is not None:
        return int(driver_execute(session_connection, statement, values).rowcount)
    return int(_execute(statement, values).rowcount)


def rows_alone(statement: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of a SELECT, by column key, as `first_alone` sends it."""
    session_connection = _open_session_connection()
    if session_connection is None and driver_form(statement, db.engine.dialect) is None:
        session_connection = db.session.connection()  # SQL made per execution: SQLAlchemy's
    if session_connection is not None:
        return driver_rows_alone(session_connection, statement, values)
    dialect = db.engine.dialect
    return [driver_row(statement, dialect, row) for row in _execute(statement, values).fetchall()]


def commit() -> None:
    """The request's commit. Its staged writes (`idp.extensions.stage_write`), when they are all
    the session holds — no ORM change, no transaction open on the server — are sent on the
    thread's kept connection as the one statement they make together, a transaction of its own
    (what the session's commit would have sent, without a session connection for it); anything
    else is the session's commit as ever — skipped when it has nothing to commit: no
    transaction begun, no ORM change, no write staged (an empty commit still costs a
    transaction object and its events)."""
    registry = db.session.registry
    if not registry.has():
        return
    session = registry()
    writes = session.info.get(STAGED)
    if (writes and db.engine.dialect.name == "postgresql"
            and not (session.new or session.dirty or session.deleted)
            and _open_session_connection() is None):
        statement, values = combined(writes)
        if driver_form(statement, db.engine.dialect) is not None:
            session.info.pop(STAGED)
            _execute(statement, values)
    if (session.in_transaction() or session.info.get(STAGED)
            or session.new or session.dirty or session.deleted):
        session.commit()


def _execute(statement: Any, values: dict[str, Any]) -> Any:
    """`idp.extensions.execute_on_driver` on this thread's kept connection (dropped if the
    server dropped it); the cursor."""
    engine = db.engine
    held = _held(engine)

    def dropped(_error: BaseException) -> None:
        _LOCAL.held = None
        held.release()

    cursor = execute_on_driver(held.driver, engine.dialect, statement, values,
                               listeners=engine.dispatch.before_cursor_execute, listening=None,
                               dropped=dropped)
    held.used_at = time.monotonic()
    return cursor


def in_open_transaction() -> bool:
    """Whether `first_alone` would now run in the request's session's transaction (which the
    caller then commits)."""
    return _open_session_connection() is not None


def _open_session_connection() -> Any:
    """The request's session's connection when that session has a transaction open on the
    server; else None (no session yet, none begun, or only statements sent alone)."""
    registry = db.session.registry
    if not registry.has():
        return None
    session = registry()
    if not session.in_transaction():
        return None
    connection = session.connection()
    return connection if open_transaction(connection) else None
