"""A throttle store shared by every process of one machine, for when Redis is not configured:
a small SQLite file under `instance/` (never the main database, which may be PostgreSQL).

It is a `limits` storage: fixed windows (password lockouts) and moving windows (SMS sends:
"one per 60 s" means 60 s since the last send, whatever the clock says). Each operation is one
`BEGIN IMMEDIATE` transaction, so concurrent workers count exactly. A few hundred microseconds a
call, and it is only called on credential checks and SMS sends, never on the protocol hot path.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

from limits.storage import MovingWindowSupport, Storage

SCHEMA = """
CREATE TABLE IF NOT EXISTS counter (key TEXT PRIMARY KEY, value INTEGER, expires_at REAL);
CREATE TABLE IF NOT EXISTS event (key TEXT, at REAL);
CREATE INDEX IF NOT EXISTS ix_event_key_at ON event (key, at);
"""
LONGEST_WINDOW = 2 * 86400  # events older than this serve no limit we keep


class SqliteThrottleStorage(Storage, MovingWindowSupport):
    STORAGE_SCHEME = ["idp+sqlite"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: object):
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        path = (uri or "").removeprefix("idp+sqlite://")
        if not path:
            raise ValueError("idp+sqlite:// needs a file path")
        self.path = Path(path)
        self._local = threading.local()
        self._connection().executescript(SCHEMA)

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    def _transaction(self) -> _Transaction:
        return _Transaction(self._connection())

    # --- fixed windows ------------------------------------------------------------------------

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT value, expires_at FROM counter WHERE key = ?", (key,)
            ).fetchone()
            if row is None or row[1] <= now:
                value, expires_at = amount, now + expiry
            else:
                value, expires_at = row[0] + amount, row[1]
            connection.execute(
                "INSERT OR REPLACE INTO counter (key, value, expires_at) VALUES (?, ?, ?)",
                (key, value, expires_at),
            )
            self._maybe_sweep(connection, now)
        return int(value)

    def get(self, key: str) -> int:
        row = self._connection().execute(
            "SELECT value FROM counter WHERE key = ? AND expires_at > ?", (key, time.time())
        ).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._connection().execute(
            "SELECT expires_at FROM counter WHERE key = ?", (key,)
        ).fetchone()
        return float(row[0]) if row else time.time()

    # --- moving windows -----------------------------------------------------------------------

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()
        with self._transaction() as connection:
            connection.execute("DELETE FROM event WHERE key = ? AND at < ?", (key, now - expiry))
            (count,) = connection.execute(
                "SELECT count(*) FROM event WHERE key = ?", (key,)
            ).fetchone()
            if count + amount > limit:
                return False
            connection.executemany(
                "INSERT INTO event (key, at) VALUES (?, ?)", [(key, now)] * amount
            )
            self._maybe_sweep(connection, now)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        oldest, count = self._connection().execute(
            "SELECT min(at), count(*) FROM (SELECT at FROM event WHERE key = ? AND at >= ?"
            " ORDER BY at DESC LIMIT ?)",
            (key, now - expiry, limit),
        ).fetchone()
        return (float(oldest) if oldest is not None else now), int(count)

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        self.clear(key)

    # --- housekeeping -------------------------------------------------------------------------

    def check(self) -> bool:
        self._connection().execute("SELECT 1").fetchone()
        return True

    def reset(self) -> int | None:
        with self._transaction() as connection:
            removed = connection.execute("DELETE FROM counter").rowcount
            removed += connection.execute("DELETE FROM event").rowcount
        return removed

    def clear(self, key: str) -> None:
        with self._transaction() as connection:
            connection.execute("DELETE FROM counter WHERE key = ?", (key,))
            connection.execute("DELETE FROM event WHERE key = ?", (key,))

    @staticmethod
    def _maybe_sweep(connection: sqlite3.Connection, now: float) -> None:
        if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
            connection.execute("DELETE FROM counter WHERE expires_at <= ?", (now,))
            connection.execute("DELETE FROM event WHERE at < ?", (now - LONGEST_WINDOW,))


class _Transaction:
    """`BEGIN IMMEDIATE … COMMIT`: takes the write lock first, so read-then-write is atomic
    across processes."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self.connection.execute("ROLLBACK" if exc_type else "COMMIT")
