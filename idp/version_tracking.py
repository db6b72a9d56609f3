"""A per-process copy of the cache versions in Redis (`idp.caching.RedisVersions`), kept exact
by Redis's client-side caching protocol: a version read by every token check costs no round
trip while nothing changed.

Each process keeps one connection that asked Redis to tell it of every change to a version key
(`CLIENT TRACKING ON REDIRECT <itself> BCAST PREFIX idp:v:`, then `SUBSCRIBE
__redis__:invalidate`). Whenever any client changes one (`INCR`, `EXPIRE`, an expiry, a flush),
Redis writes the key's name to that connection in the same pass of its event loop that answers
the writer. A read first takes in what has arrived (a read that does not wait), then serves the
versions it holds; what it lacks is read with `MGET` as before and kept.

Why what it serves is what `MGET` would answer:
- a change made by another process reaches this connection microseconds after the writer's own
  answer, long before a request that follows the change can reach this process; a change made
  by this process is forgotten here by the writer itself (`forget`), before its commit returns;
- a value read with `MGET` is kept only if no change arrived meanwhile (`epoch`), so a change
  that raced the read cannot be overwritten by what the read saw before it;
- nothing is served unless a `PING` sent at most `PROVEN_FOR` seconds ago has been answered on
  the connection (its `PONG` comes after every change Redis sent before it), so a connection
  that died silently stops serving within that time; one that fails or closes drops everything
  at once. Then each read is an `MGET` until a new connection is set up (`RETRY_AFTER`).

Not used over TLS (`rediss://`): the versions are then read with `MGET` every time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from hiredis import Reader, pack_command

log = logging.getLogger(__name__)

PREFIX = "idp:v:"
CHANNEL = b"__redis__:invalidate"
PING_EVERY = 0.5  # seconds
PROVEN_FOR = 2.0  # seconds: how old the last answered PING may be for the copy to be served
RETRY_AFTER = 5.0  # seconds after a failed connection before the next attempt
MAX_KEYS = 100_000  # beyond this the copy starts over (one MGET per key to refill it)


class Broken(Exception):
    """The tracking connection failed: everything held is dropped."""


class Refused(Broken):
    """Redis refused a command of the set-up (`CLIENT TRACKING` not allowed): this process
    reads the versions with `MGET` from then on."""


class VersionCopy:
    """The versions this process holds, and the connection that keeps them."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {}
        self._epoch = 0  # moves on every change heard and every new connection
        self._pid = os.getpid()
        self._socket: socket.socket | None = None
        self._reader = Reader()
        self._retry_at = 0.0
        self._ping_sent_at = 0.0  # of the PING not answered yet (0: none outstanding)
        self._proven_at = 0.0  # when the last answered PING was sent
        # The connection, closed when this copy goes (the list, not the copy, is held).
        self._held_socket: list[socket.socket | None] = [None]
        weakref.finalize(self, _close, self._held_socket)

    @classmethod
    def for_client(cls, redis: Any) -> VersionCopy | None:
        """A copy for the Redis that `redis` (a redis-py client) talks to; None over TLS or
        any connection it cannot make alike."""
        pool = redis.connection_pool
        kwargs = dict(pool.connection_kwargs)
        if pool.connection_class.__name__ not in ("Connection", "UnixDomainSocketConnection"):
            return None
        return cls(kwargs)

    def held(self, keys: Sequence[str]) -> tuple[list[Any] | None, int]:
        """(the values of `keys` when all are held, else None; the epoch to give `keep`).

        Never waits for another thread: while one is taking in messages (its read of the
        socket lets the others run), the rest read Redis this time. Waiting there made the
        threads queue behind each other (userinfo's p99 13 ms against 7 without the copy)."""
        if not self._this_process().acquire(blocking=False):
            return None, -1
        try:
            if not self._fresh():
                return None, -1
            values = [self._values.get(key, _MISSING) for key in keys]
            if _MISSING in values:
                return None, self._epoch
            return values, self._epoch
        finally:
            self._lock.release()

    def keep(self, keys: Sequence[str], values: Sequence[Any], epoch: int) -> None:
        """`values` read with `MGET` since `held` gave `epoch`: kept unless a change arrived
        meanwhile (or the connection changed)."""
        if epoch < 0 or not self._this_process().acquire(blocking=False):
            return  # (another thread is taking in messages: kept by a later read)
        try:
            try:
                self._take_in()
            except (Broken, OSError):
                self._reset()
                return
            if self._epoch != epoch or self._socket is None:
                return
            if len(self._values) + len(keys) > MAX_KEYS:
                self._values.clear()
            self._values.update(zip(keys, values, strict=True))
        finally:
            self._lock.release()

    def forget(self, keys: Sequence[str], everything: bool) -> None:
        """This process changed these keys (or, with `everything`, any): its next read of
        them asks Redis."""
        with self._this_process():
            self._epoch += 1
            if everything:
                self._values.clear()
            for key in keys:
                self._values.pop(key, None)

    # --- the connection --------------------------------------------------------------------

    def _this_process(self) -> threading.Lock:
        """The lock, after a fork the child's own: the parent's connection, values and lock
        (held, maybe, by a thread the child does not have) are not the child's."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._socket = self._held_socket[0] = None
            self._reset()
            self._pid = os.getpid()
        return self._lock

    def _fresh(self) -> bool:
        """Connected, everything that arrived taken in, and proven recently."""
        now = time.monotonic()
        try:
            if self._socket is None:
                if now < self._retry_at:
                    return False
                self._connect()
            self._take_in()
            if self._ping_sent_at == 0.0 and now - self._proven_at >= PING_EVERY:
                self._socket.sendall(pack_command(("PING",)))  # type: ignore[union-attr]
                self._ping_sent_at = now
        except Refused as error:
            log.warning("cache versions: Redis refused tracking (%s); reading Redis", error)
            self._reset()
            self._retry_at = float("inf")
            return False
        except (Broken, OSError) as error:
            log.warning("cache versions: tracking connection lost (%s); reading Redis", error)
            self._reset()
            self._retry_at = now + RETRY_AFTER
            return False
        return now - self._proven_at <= PROVEN_FOR

    def _connect(self) -> None:
        options = self._options
        timeout = options.get("socket_connect_timeout") or 1.0
        path = options.get("path")
        if path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        else:
            sock = socket.create_connection(
                (options.get("host", "localhost"), int(options.get("port", 6379))), timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = Reader()
        try:
            password, username = options.get("password"), options.get("username")
            if password:
                _ask(sock, reader, ("AUTH", username, password) if username
                     else ("AUTH", password))
            client_id = _ask(sock, reader, ("CLIENT", "ID"))
            _ask(sock, reader, ("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST",
                                "PREFIX", PREFIX))
            _ask(sock, reader, ("SUBSCRIBE", CHANNEL))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._socket, self._reader = sock, reader
        self._held_socket[0] = sock
        self._values.clear()
        self._epoch += 1
        self._ping_sent_at = 0.0
        self._proven_at = 0.0

    def _take_in(self) -> None:
        """Every message that has arrived, without waiting."""
        sock = self._socket
        if sock is None or not _readable(sock.fileno()):
            return
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                break
            if not data:
                raise Broken("closed by Redis")
            self._reader.feed(data)
            if len(data) < 65536:
                break
        while (message := self._reader.gets()) is not False:
            self._heard(message)

    def _heard(self, message: Any) -> None:
        if isinstance(message, Exception):
            raise Broken(str(message))
        kind = message[0] if isinstance(message, list) and message else None
        if kind == b"message" and message[1] == CHANNEL:
            self._epoch += 1
            keys = message[2]
            if keys is None:  # FLUSHDB / FLUSHALL
                self._values.clear()
            else:
                for key in keys:
                    self._values.pop(key.decode(), None)
        elif kind == b"pong":
            self._proven_at, self._ping_sent_at = self._ping_sent_at, 0.0

    def _reset(self) -> None:
        self._values.clear()
        self._epoch += 1
        self._ping_sent_at = self._proven_at = 0.0
        if self._socket is not None:  # this process's own (`_this_process` drops a parent's)
            self._socket.close()
            self._socket = self._held_socket[0] = None


_MISSING = object()


class _PollFd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


def _poll_holding_the_gil() -> Any:
    """libc's `poll` called through `ctypes.PyDLL`, which keeps the GIL. Every read asks
    whether a message has arrived: Python's own `select`, `poll` and `recv` release the GIL
    around even a call that does not wait, and a thread that gives the GIL away for a
    microsecond waits up to the switch interval (5 ms) to have it back while the others run
    (the convoy of bpo-7946): that made userinfo's p99 15 ms against 6 without the copy."""
    try:
        libc = ctypes.PyDLL(ctypes.util.find_library("c") or None)
        poll = libc.poll
    except (OSError, AttributeError):
        return None
    poll.argtypes = [ctypes.POINTER(_PollFd), ctypes.c_ulong, ctypes.c_int]
    poll.restype = ctypes.c_int
    return poll


_POLL = _poll_holding_the_gil()
_POLLIN = 0x001


def _readable(fd: int) -> bool:
    """Whether something (a message, or the end of the connection) waits on `fd`; True when
    it cannot be told (then `recv` finds out)."""
    if _POLL is None:
        return True
    entry = _PollFd(fd, _POLLIN, 0)
    return bool(_POLL(ctypes.byref(entry), 1, 0) != 0)


def _ask(sock: socket.socket, reader: Reader, command: tuple[Any, ...]) -> Any:
    sock.sendall(pack_command(command))
    while (answer := reader.gets()) is False:
        data = sock.recv(65536)
        if not data:
            raise Broken("closed by Redis")
        reader.feed(data)
    if isinstance(answer, Exception):
        raise Refused(f"{command[0]} {command[1] if len(command) > 1 else ''}: {answer}")
    return answer


def _close(holder: list[socket.socket | None]) -> None:
    sock = holder[0]
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass
