"""Whether a pooled PostgreSQL connection is still alive, checked before it is handed out.

`pool_pre_ping` sends a round trip per checkout (~0.1 ms of CPU and a wait on every request,
bench/profile_token.py). The check here costs no round trip: a connection resting in the pool
has nothing to read, so a socket that *is* readable carries the server's goodbye (a restart or
`pg_terminate_backend` sends a FATAL message and closes) — the connection is discarded and the
pool hands out a fresh one. A connection idle longer than IDLE_PING_SECONDS (long enough for a
firewall or a NAT to have dropped it silently) is pinged as before."""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

IDLE_PING_SECONDS = 30.0
_IDLE_SINCE = "idp_idle_since"


def check_on_checkout(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _rested(_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None:
            return  # just connected
        if has_news(connection) or (
            time.monotonic() - idle_since > IDLE_PING_SECONDS
            and not answers(engine, connection)
        ):
            raise DisconnectionError("the pooled connection was closed by the server")


def has_news(connection: Any) -> bool:
    """Anything to read on an idle connection's socket (data or end of stream)."""
    try:
        socket = connection.pgconn.socket
    except Exception:  # noqa: BLE001 - psycopg raises once the connection is closed
        return True
    poller = select.poll()  # not select(): it refuses descriptors past FD_SETSIZE (1024)
    poller.register(socket, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def answers(engine: Engine, connection: Any) -> bool:
    try:
        return bool(engine.dialect.do_ping(connection))
    except Exception:  # noqa: BLE001 - any failure means: discard it
        return False
