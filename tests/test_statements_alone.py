"""`idp.statements_alone`: the token endpoint's statements, each a transaction of its own on a
PostgreSQL connection the thread keeps — or in the request's open transaction when there is one;
a connection the server closed is replaced, a failure is SQLAlchemy's, nothing leaks."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import OperationalError

from idp import statements_alone
from idp.extensions import db
from idp.outage import is_database_outage

BACKEND = sa.select(sa.func.pg_backend_pid().label("pid"))


@pytest.fixture
def backend() -> str:
    """PostgreSQL only: on SQLite the token statements run in the session (`token_statements`)."""
    return "postgresql"


@pytest.fixture
def pg(app: Flask) -> Any:
    with app.app_context():
        db.session.execute(sa.text("CREATE TABLE IF NOT EXISTS alone_probe (n integer)"))
        db.session.execute(sa.text("DELETE FROM alone_probe"))
        db.session.commit()
        yield app
        db.session.rollback()
        db.session.execute(sa.text("DROP TABLE alone_probe"))
        db.session.commit()


INSERT = sa.text("INSERT INTO alone_probe (n) VALUES (:n) RETURNING n").columns(
    sa.column("n", sa.Integer))


def _count() -> int:
    with db.engine.connect() as other:  # another connection: sees only what is committed
        return int(other.execute(sa.text("SELECT count(*) FROM alone_probe")).scalar_one())


def test_a_statement_alone_commits_by_itself_on_the_threads_kept_connection(pg: Flask) -> None:
    first = statements_alone.first_alone(BACKEND, {})
    assert statements_alone.first_alone(INSERT, {"n": 1}) == {"n": 1}
    assert _count() == 1  # committed, with no COMMIT sent
    assert statements_alone.first_alone(BACKEND, {}) == first  # the same connection
    assert not db.session.registry.has() or not db.session().in_transaction()


def test_inside_the_sessions_open_transaction_it_joins_it(pg: Flask) -> None:
    db.session.execute(sa.text("INSERT INTO alone_probe (n) VALUES (7)"))  # begun, not committed
    assert statements_alone.in_open_transaction()
    found = statements_alone.first_alone(
        sa.text("SELECT count(*) AS seen FROM alone_probe").columns(sa.column("seen")), {})
    assert found == {"seen": 1}  # it sees the session's own write
    statements_alone.first_alone(INSERT, {"n": 8})
    db.session.rollback()
    assert _count() == 0  # and goes with it


def test_a_connection_the_server_closed_while_resting_is_replaced(pg: Flask) -> None:
    pid = statements_alone.first_alone(BACKEND, {})["pid"]  # type: ignore[index]
    with db.engine.connect() as other:
        other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    _wait_until_gone(pid)  # the server ends the backend after answering (asynchronously)
    again = statements_alone.first_alone(BACKEND, {})
    assert again is not None and again["pid"] != pid


def _wait_until_gone(pid: int) -> None:
    import time

    deadline = time.monotonic() + 10
    with db.engine.connect() as other:
        while other.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                            {"pid": pid}).scalar_one():
            assert time.monotonic() < deadline, "the backend did not end"
            other.rollback()
            time.sleep(0.01)


def test_a_failure_is_sqlalchemys_and_the_connection_is_not_kept(pg: Flask) -> None:
    """A connection dropped between the liveness check and the statement (the server killed
    mid-way): an outage in SQLAlchemy's terms (503), and the next statement runs on a new one."""
    pid = statements_alone.first_alone(BACKEND, {})["pid"]  # type: ignore[index]
    killer = sa.text(f"SELECT pg_terminate_backend({int(pid)}) AS n").columns(sa.column("n"))
    with pytest.raises(OperationalError) as raised:  # it terminates its own backend
        statements_alone.first_alone(killer, {})
    assert raised.value.connection_invalidated
    assert is_database_outage(raised.value)
    assert statements_alone.first_alone(BACKEND, {})["pid"] != pid  # type: ignore[index]


def test_the_engines_statement_listeners_hear_it(pg: Flask) -> None:
    heard: list[str] = []
    listener = lambda *args: heard.append(args[2])  # noqa: E731
    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        statements_alone.first_alone(INSERT, {"n": 2})
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert [sql for sql in heard if "alone_probe" in sql]


def test_a_threads_connection_goes_back_when_the_thread_ends(pg: Flask) -> None:
    pool = db.engine.pool
    before = pool.checkedout()

    def work() -> None:
        with pg.app_context():
            statements_alone.first_alone(BACKEND, {})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    import gc

    gc.collect()
    assert pool.checkedout() == before


def test_a_server_that_cannot_be_reached_is_an_outage(pg: Flask, monkeypatch: Any) -> None:
    """No connection to keep (the server down): SQLAlchemy's error for a failed connect, which
    the app answers 503 (`idp.outage`), not the driver's own (a 500)."""
    import psycopg

    def refused() -> Any:
        raise psycopg.OperationalError("connection refused")

    statements_alone._LOCAL.held = None
    monkeypatch.setattr(db.engine, "raw_connection", refused)
    with pytest.raises(OperationalError) as raised:
        statements_alone.first_alone(BACKEND, {})
    assert is_database_outage(raised.value)


PROBE_INSERT = sa.text("INSERT INTO alone_probe (n) VALUES (:n)")


def test_staged_writes_alone_are_one_statement_on_the_kept_connection(pg: Flask) -> None:
    """`commit`: staged writes with nothing else in the session go as the one statement they
    make (no BEGIN, no COMMIT, no session connection), committed."""
    from idp.extensions import stage_write

    heard: list[str] = []
    listener = lambda *args: heard.append(args[2].split()[0].upper())  # noqa: E731
    stage_write((PROBE_INSERT, {"n": 3}))
    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        statements_alone.commit()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert heard == ["INSERT"]
    assert _count() == 1


def test_staged_writes_beside_an_orm_change_go_with_the_sessions_commit(pg: Flask) -> None:
    """An ORM change pending (a staged row may refer to it): the session's own commit, which
    flushes it first and sends the staged writes in its transaction."""
    from idp.extensions import stage_write
    from idp.identity.models import Account

    account = Account()
    db.session.add(account)
    stage_write((PROBE_INSERT, {"n": 4}))
    statements_alone.commit()
    assert _count() == 1
    assert db.session.get(Account, account.id) is not None


def test_a_forked_child_leaves_the_parents_connection_alone(pg: Flask) -> None:
    """A child process opens its own; replacing, or exiting with, the parent's copy must not
    close it (closing a copy of the socket would end the parent's server session)."""
    import os

    parent = statements_alone.first_alone(BACKEND, {})
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            child = statements_alone.first_alone(BACKEND, {})
            os.write(write, str(child["pid"] if child else 0).encode())
        finally:
            os._exit(0)  # exit handlers skipped, as a worker's hard exit; collectors ran above
    os.close(write)
    child_pid = int(os.read(read, 64) or b"0")
    os.waitpid(pid, 0)
    assert child_pid not in (0, parent["pid"])  # type: ignore[index]
    assert statements_alone.first_alone(BACKEND, {}) == parent
