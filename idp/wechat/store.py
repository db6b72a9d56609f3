"""The app access-token cache shared by every IdP process: in the database, or in Redis.

`shared_token_store(app)` picks Redis when `IDP_REDIS_URL` is set, else the database. In the
database the token is encrypted with `IDP_ENCRYPTION_KEY` (a database dump must not hand out a
working WeChat credential), and "one refresher at a time" is a lock on the appid's row, held on a
connection of its own for as long as the refresh takes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from flask import Flask
from sqlalchemy import Connection, Engine, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from idp.crypto import DecryptionError, SecretBox
from idp.wechat.models import WeChatAccessToken
from idp.wechat.token_store import (
    AccessTokenStore,
    CachedToken,
    FailoverAccessTokenStore,
    RedisAccessTokenStore,
)

TABLE = cast(Table, WeChatAccessToken.__table__)


def shared_token_store(app: Flask) -> AccessTokenStore:
    from idp.extensions import db

    database = DatabaseAccessTokenStore(db.engine, app.extensions["idp_secret_box"])
    redis_client = app.extensions.get("idp_redis")
    if redis_client is not None:
        # Redis down: the database store takes over (docs/DEPLOYMENT.md, "When Redis is down").
        redis = EncryptedAccessTokenStore(
            RedisAccessTokenStore(redis_client), app.extensions["idp_secret_box"]
        )
        return FailoverAccessTokenStore(redis, database)
    return database


class EncryptedAccessTokenStore:
    """Wraps a store so the token it keeps is encrypted like every other secret at rest (Redis
    persists to disk, and its dumps travel); locking is the wrapped store's."""

    def __init__(self, inner: AccessTokenStore, box: SecretBox) -> None:
        self._inner = inner
        self._box = box

    def get(self, appid: str) -> CachedToken | None:
        cached = self._inner.get(appid)
        if cached is None:
            return None
        try:
            token = self._box.decrypt(cached.token, context=_context(appid))
        except DecryptionError:
            return None  # another key, or a plaintext left by an older version: a cache miss
        return CachedToken(token, cached.expires_at)

    def set(self, appid: str, token: str, expires_at: float) -> None:
        self._inner.set(appid, self._box.encrypt(token, context=_context(appid)), expires_at)

    def delete(self, appid: str) -> None:
        self._inner.delete(appid)

    def lock(self, appid: str) -> Any:
        return self._inner.lock(appid)


class DatabaseAccessTokenStore:
    """`wechat_access_token` rows, written outside the request's transaction (the cache is not
    part of whatever the request is doing, and must not be rolled back with it)."""

    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box
        # While this thread holds an appid's lock, reads and writes of that appid go through the
        # locking connection: on SQLite a second connection would wait for our own write lock.
        self._held = threading.local()

    def get(self, appid: str) -> CachedToken | None:
        with self._connection(appid) as connection:
            row = connection.execute(
                select(TABLE.c.token_encrypted, TABLE.c.expires_at).where(TABLE.c.appid == appid)
            ).first()
        if row is None or not row.token_encrypted or row.expires_at <= time.time():
            return None
        try:
            token = self._box.decrypt(row.token_encrypted, context=_context(appid))
        except DecryptionError:
            return None  # made with a retired key: a cache miss, the next refresh rewrites it
        return CachedToken(token, row.expires_at)

    def set(self, appid: str, token: str, expires_at: float) -> None:
        encrypted = self._box.encrypt(token, context=_context(appid))
        with self._connection(appid) as connection:
            _insert_placeholder(connection, appid)
            connection.execute(
                update(TABLE)
                .where(TABLE.c.appid == appid)
                .values(token_encrypted=encrypted, expires_at=expires_at)
            )

    def delete(self, appid: str) -> None:
        with self._connection(appid) as connection:
            connection.execute(delete(TABLE).where(TABLE.c.appid == appid))

    @contextmanager
    def lock(self, appid: str) -> Iterator[None]:
        """Holds the appid's row locked until the block ends.

        A no-op UPDATE locks on both backends: PostgreSQL takes the row lock (other refreshers
        wait on it), SQLite takes its database write lock (waiting out `busy_timeout`). The
        placeholder row makes the lock exist before the first token does.
        """
        held = self._held_connections()
        if appid in held:
            yield  # re-entered by the same thread
            return
        with self._engine.begin() as connection:
            _insert_placeholder(connection, appid)
            connection.execute(
                update(TABLE).where(TABLE.c.appid == appid).values(appid=TABLE.c.appid)
            )
            held[appid] = connection
            try:
                yield
            finally:
                held.pop(appid, None)

    @contextmanager
    def _connection(self, appid: str) -> Iterator[Connection]:
        locked = self._held_connections().get(appid)
        if locked is not None:
            yield locked
            return
        with self._engine.begin() as connection:
            yield connection

    def _held_connections(self) -> dict[str, Connection]:
        if not hasattr(self._held, "connections"):
            self._held.connections = {}
        connections: dict[str, Connection] = self._held.connections
        return connections


def _insert_placeholder(connection: Connection, appid: str) -> None:
    values: dict[str, Any] = {"appid": appid, "token_encrypted": "", "expires_at": 0.0}
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(TABLE).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(TABLE).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - the two supported backends are above
        if connection.execute(select(TABLE.c.appid).where(TABLE.c.appid == appid)).first():
            return
        statement = TABLE.insert().values(**values)
    connection.execute(statement)


def _context(appid: str) -> str:
    return f"wechat-access-token:{appid}"
