"""Extensions, created unbound and bound to the app in `create_app`."""

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import CursorResult, Executable, MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Session

# Named constraints, so Alembic can alter them on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
# The base of every model. Flask-SQLAlchemy builds `db.Model` at run time, which a type checker
# cannot take as a base class; to the checker it is the declarative base it is made from.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


# Alembic, imported now after the app's logging is set up, logs a "setup plugin …" line at INFO
# for each of its plugins as it is imported; nothing an operator needs (its migration lines are
# other loggers').
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class _MigrationsOnFirstUse:
    """`app.extensions["migrate"]` until something uses it: Flask-Migrate imports Alembic (~0.15 s
    of every process's start-up), which only a `db` command, a migration or the schema check of
    `idp serve` needs. On first use Flask-Migrate is set up on the app (replacing this) and the
    attribute asked for comes from its own `app.extensions["migrate"]`."""

    def __init__(self, app: Any, directory: str) -> None:
        self._app = app
        self._directory = directory

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not Flask-Migrate's (copy, pickle, a half-built object)
            raise AttributeError(name)
        from flask_migrate import Migrate

        if self._app.extensions.get("migrate") is self:
            Migrate(self._app, db, directory=self._directory)
        return getattr(self._app.extensions["migrate"], name)


def migrations_on_first_use(app: Any, directory: str) -> None:
    """Flask-Migrate's `app.extensions["migrate"]` (the `db` commands: `idp.cli`), set up lazily."""
    app.extensions["migrate"] = _MigrationsOnFirstUse(app, directory)


def rows_matched(statement: Executable) -> int:
    """Runs an UPDATE or DELETE in the session; how many rows it matched (a DML statement's
    result is a CursorResult, which the session's signature does not say)."""
    return cast(CursorResult[Any], db.session.execute(statement)).rowcount

# A write built once (its values as bound parameters, named apart from other writes') and the
# values of this use: `execute_together`'s unit.
Write = tuple[Any, dict[str, Any]]


def execute_together(*writes: Write) -> None:
    """Runs independent INSERT/UPDATE statements in the session's transaction, in one round
    trip on PostgreSQL: the last statement carries the others as data-modifying CTEs (they
    all see one snapshot, so none may read what another writes). SQLite, in-process, runs them
    one after the other.

    Sent on the session's connection, past the ORM: no cache version is bumped for them
    (`idp.caching` bumps on ORM writes), so they must be writes no cached answer depends on."""
    _send(db.session.connection(), writes)


def _send(connection: Any, writes: tuple[Write, ...] | list[Write]) -> None:
    if connection.dialect.name != "postgresql" or len(writes) < 2:
        for statement, values in writes:
            connection.execute(statement, values)
        return
    together, values = combined(writes)
    if driver_form(together, connection.dialect) is None:
        connection.execute(together, values)
    else:
        driver_execute(connection, together, values)


def combined(writes: tuple[Write, ...] | list[Write]) -> Write:
    """The writes as the one statement `execute_together` sends on PostgreSQL (a single write
    as it is), with all their values."""
    if len(writes) == 1:
        return writes[0]
    statements = tuple(statement for statement, _ in writes)
    values = {name: value for _, each in writes for name, value in each.items()}
    return _together(statements), values


def driver_execute(connection: Any, statement: Any, values: dict[str, Any]) -> Any:
    """Runs a statement built once on the driver's own connection under `connection` (in its
    transaction; psycopg prepares it server-side once it repeats): the SQL and the parameters'
    conversions are SQLAlchemy's own, worked out once per statement, without SQLAlchemy's
    per-execution work (~85 µs of CPU a statement here, more than psycopg's own). PostgreSQL
    only; returns the driver's cursor. For the token endpoint's statements, which run on every
    token issued."""
    return execute_on_driver(
        connection.connection.driver_connection, connection.dialect, statement, values,
        listeners=connection.dispatch.before_cursor_execute, listening=connection,
        dropped=connection.invalidate)


def execute_on_driver(driver_connection: Any, dialect: Any, statement: Any,
                      values: dict[str, Any], *, listeners: Any, listening: Any,
                      dropped: Callable[[BaseException], Any]) -> Any:
    """`driver_execute` on a psycopg connection: SQLAlchemy's `before_cursor_execute`
    `listeners` hear it (as `listening`, the SQLAlchemy connection they are given, if any); a
    failure is raised as SQLAlchemy raises it — its exception classes (an outage is told by
    them, `idp.outage`) — after `dropped` was told of a connection the server dropped, which
    must not be used again. Returns the cursor."""
    form = driver_form(statement, dialect)
    if form is None:
        raise ValueError("a statement with parameters rendered at execution time")
    sql, binds, _ = form
    if binds:
        values = dict(values)
        for name, process in binds:
            if name in values:
                values[name] = process(values[name])
    cursor = driver_connection.cursor()
    if listeners:  # SQLAlchemy's statement event, heard as for its own executions
        listeners(listening, cursor, sql, values, None, False)
    dbapi = dialect.loaded_dbapi
    try:
        cursor.execute(sql, values)  # prepared after a few uses (psycopg's prepare_threshold)
    except dbapi.Error as error:
        is_dropped = dialect.is_disconnect(error, driver_connection, cursor)
        if is_dropped:
            dropped(error)
        raise sa_exc.DBAPIError.instance(
            sql, values, error, dbapi.Error, connection_invalidated=is_dropped,
            dialect=dialect) from error
    return cursor


def driver_row(statement: Any, dialect: Any, row: Any) -> dict[str, Any]:
    """A row of `statement` sent through the driver, by column key, each value converted as
    SQLAlchemy would."""
    _, _, columns = driver_form(statement, dialect)  # type: ignore[misc]
    return {key: process(value) if process else value
            for (key, process), value in zip(columns, row, strict=True)}


def driver_first(connection: Any, statement: Any, values: dict[str, Any]) -> dict[str, Any] | None:
    """`driver_execute` of a statement with RETURNING (or a SELECT): its first row by column
    key, each value converted as SQLAlchemy would, or None."""
    row = driver_execute(connection, statement, values).fetchone()
    return None if row is None else driver_row(statement, connection.dialect, row)


def driver_rows_alone(connection: Any, statement: Any,
                      values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of a SELECT by column key, sent `alone` on `connection` (a statement the
    driver cannot take as it is, `driver_form`, through SQLAlchemy)."""
    if driver_form(statement, connection.dialect) is None:
        with alone(connection):
            return [dict(row) for row in connection.execute(statement, values).mappings()]
    with alone(connection):
        rows = driver_execute(connection, statement, values).fetchall()
    return [driver_row(statement, connection.dialect, row) for row in rows]


@contextlib.contextmanager
def alone(connection: Any) -> Iterator[None]:
    """Autocommit on the driver's connection meanwhile, if no transaction is open on it: each
    statement sent meanwhile is a transaction of its own (PostgreSQL; under READ COMMITTED a
    plain read sees what it would see inside a transaction, and a single statement is atomic)."""
    if open_transaction(connection):
        yield
        return
    raw = connection.connection.driver_connection
    raw.autocommit = True
    try:
        yield
    finally:
        if not raw.closed:
            raw.autocommit = False


def open_transaction(connection: Any) -> bool:
    """Whether the driver's connection under `connection` has begun a transaction on the
    server (statements sent since the last commit or rollback)."""
    from psycopg.pq import TransactionStatus

    status = connection.connection.driver_connection.info.transaction_status
    return bool(status != TransactionStatus.IDLE)


DriverForm = tuple[str, tuple[Any, ...], tuple[Any, ...]]


@functools.cache
def driver_form(statement: Any, dialect: Any) -> DriverForm | None:
    """The SQL SQLAlchemy sends for `statement` on `dialect`, its parameters' conversions and
    its result columns' (key, conversion); None for a statement whose SQL depends on its
    values (an expanding `IN`) or that carries values of its own (a literal, a LIMIT), which
    SQLAlchemy runs."""
    compiled = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params or any(
        not bind.required for bind in compiled.binds.values()
    ):
        return None
    binds = tuple((name, process) for name, bind in compiled.binds.items()
                  if (process := _impl(bind.type, dialect).bind_processor(dialect)) is not None)
    columns = tuple((column.key, _impl(column.type, dialect).result_processor(dialect, None))
                    for column in getattr(statement, "exported_columns", ()))
    return str(compiled), binds, columns


STAGED = "idp_staged_writes"


def stage_write(write: Write) -> None:
    """Queues a write for the session's next commit, where every staged write is sent together
    (`execute_together`: one round trip on PostgreSQL), after the ORM's pending objects are
    flushed (a staged row may refer to one). A rollback drops them. On PostgreSQL, when
    nothing else was sent in the transaction, they go as a transaction of their own. For the
    token endpoint's grants whose writes (the login's, the refresh token, the released
    claims) are decided one by one and all wait for the one commit of the answer."""
    db.session.info.setdefault(STAGED, []).append(write)


@event.listens_for(Session, "before_commit")
def _write_staged(session: Session) -> None:
    writes = session.info.pop(STAGED, None)
    if not writes:
        return
    if session.new or session.dirty or session.deleted:
        session.flush()
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        _send(connection, writes)
        return
    # Nothing else sent in this transaction (its reads ran alone): the writes, one statement,
    # are a transaction of their own — no BEGIN and COMMIT round trips.
    with alone(connection):
        _send(connection, writes)


@event.listens_for(Session, "after_soft_rollback")
def _drop_staged(session: Session, _transaction: Any) -> None:
    session.info.pop(STAGED, None)


def _impl(type_: Any, dialect: Any) -> Any:
    return type_.dialect_impl(dialect)


@functools.cache
def _together(statements: tuple[Any, ...]) -> Any:
    """Built once per combination of statements that are themselves built once."""
    *first, last = statements
    return last.add_cte(*(statement.cte(f"write_{index}") for index, statement in enumerate(first)))


csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


def per_process_limiter() -> Any:
    """The app's own fixed-window counts (a `limits` strategy in memory), for the limits counted
    outside Flask-Limiter's decorators while their shared store is down: weaker, never none."""
    from flask import current_app
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter

    found = current_app.extensions.get("idp_rate_fallback")
    if found is None:
        found = current_app.extensions["idp_rate_fallback"] = FixedWindowRateLimiter(
            MemoryStorage()
        )
    return found


def redis_options() -> dict[str, Any]:
    """Connection options of every Redis client of the IdP. redis-py's default retries three
    times with an exponential backoff (about 4 s per call while Redis is down); a request must
    fail fast instead (503, or the throttles' fail-closed answer), so: one immediate retry, for
    a pooled connection the server closed."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {"socket_timeout": 1.0, "socket_connect_timeout": 1.0, "retry": Retry(NoBackoff(), 1)}
