"""Statements sent through the driver (`idp.extensions.driver_execute`, the token endpoint's
hot writes on PostgreSQL) fail as SQLAlchemy's own executions fail: SQLAlchemy's exception
classes, so a dropped server is an outage (503, `idp.outage`) and not a 500, and the dropped
connection is invalidated rather than pooled again."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, literal_column, select, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from idp.extensions import alone, driver_execute, driver_first
from idp.outage import is_database_outage
from tests.conftest import POSTGRES_URL


@pytest.fixture
def engine():  # type: ignore[no-untyped-def]
    engine = create_engine(POSTGRES_URL)
    yield engine
    engine.dispose()


def test_our_sql_error_is_sqlalchemys_and_not_an_outage(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        with pytest.raises(ProgrammingError) as raised:
            driver_execute(connection, text("SELECT no_such_column"), {})
    assert not is_database_outage(raised.value)


def test_a_dropped_server_is_an_outage_and_the_connection_is_not_reused(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        assert driver_first(connection, select(literal_column("1").label("one")), {}) == {"one": 1}
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        with pytest.raises(OperationalError) as raised:
            driver_execute(connection, text("SELECT 1"), {})
        assert raised.value.connection_invalidated
        assert connection.invalidated
    assert is_database_outage(raised.value)


def test_a_statement_alone_is_its_own_transaction_and_leaves_none_open(engine) -> None:  # type: ignore[no-untyped-def]
    """`alone` on a connection with no transaction begun (how staged writes with nothing else
    in their transaction are sent): the statement commits by itself (no BEGIN, no COMMIT),
    and the connection is back to transactions after."""
    from psycopg.pq import TransactionStatus

    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TEMPORARY TABLE alone (n integer)")
        connection.commit()
        raw = connection.connection.driver_connection
        insert = text("INSERT INTO alone (n) VALUES (1) RETURNING n").columns(
            literal_column("n"))
        with alone(connection):
            assert driver_first(connection, insert, {}) == {"n": 1}
        assert raw.info.transaction_status == TransactionStatus.IDLE  # committed already
        assert not raw.autocommit
        connection.rollback()  # nothing to undo: the row stays
        assert connection.exec_driver_sql("SELECT count(*) FROM alone").scalar() == 1
        # Inside an open transaction it joins it: a rollback undoes it.
        with alone(connection):
            assert driver_first(connection, insert, {}) == {"n": 1}
        assert raw.info.transaction_status == TransactionStatus.INTRANS
        connection.rollback()
        assert connection.exec_driver_sql("SELECT count(*) FROM alone").scalar() == 1
