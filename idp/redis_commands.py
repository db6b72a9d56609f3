"""A Redis command sent on a connection the calling thread keeps: for the few commands the
protocol's hot paths send on every request (the cache versions' `MGET` of every token check,
the token endpoint's rate limit).

redis-py's client wraps each command in a pool checkout and return, its retry policy, its
event hooks and its own argument encoding: ~60 µs of CPU a command here, against ~30 µs for
the same command packed by hiredis and sent on a connection the thread holds (bench/README.md,
"Redis commands"). The connection is still redis-py's own — it connects, authenticates,
selects the database, keeps the client's timeouts and parses the answer with hiredis — taken
from the client's pool once per thread and given back when the thread ends. A command that
finds the connection closed or timed out is sent once more on a fresh connection, as the
clients' retry policy does (`idp.extensions.redis_options`); a second failure is raised."""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from hiredis import pack_command
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

_RETRIED = (RedisConnectionError, RedisTimeoutError, OSError)


class _Held:
    """One thread's connection, given back to the pool when the thread's locals go."""

    def __init__(self, pool: Any) -> None:
        self.pid = os.getpid()
        self.connection = pool.get_connection()
        weakref.finalize(self, pool.release, self.connection)


class HeldConnections:
    """`execute(*args)`: one command on this thread's connection of `client`'s pool, its
    answer as redis-py's connection parses it (bytes, lists, ints; an error reply raised as
    redis-py's `ResponseError`)."""

    def __init__(self, client: Any) -> None:
        self._pool = client.connection_pool
        self._local = threading.local()

    def execute(self, *args: Any) -> Any:
        packed = [pack_command(args)]
        connection = self._connection()
        try:
            connection.send_packed_command(packed, check_health=False)
            return connection.read_response()
        except _RETRIED:
            connection.disconnect()
            connection.send_packed_command(packed, check_health=False)  # connects anew
            return connection.read_response()

    def execute_many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """`commands` sent together, one round trip: each one's answer in order, an error reply
        given as its `ResponseError` (not raised: the answers after it are still read)."""
        packed = [pack_command(command) for command in commands]
        connection = self._connection()
        try:
            connection.send_packed_command(packed, check_health=False)
            return [_answer(connection) for _ in commands]
        except _RETRIED:
            connection.disconnect()
            connection.send_packed_command(packed, check_health=False)  # connects anew
            return [_answer(connection) for _ in commands]

    def _connection(self) -> Any:
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():  # none yet, or inherited through fork
            held = self._local.held = _Held(self._pool)
        return held.connection


def _answer(connection: Any) -> Any:
    try:
        return connection.read_response()
    except ResponseError as error:
        return error
