"""`idp.version_tracking`: the cache versions a process holds, kept by Redis's invalidation
messages, are what an `MGET` would answer — a change by another client, this process's own
change, a flush, a change racing a read, a lost connection — and cost no round trip while
nothing changed. Real Redis; no sleeping on the happy path (the first PING's answer is taken
in as soon as it has arrived)."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from idp import version_tracking
from idp.caching import RedisVersions
from idp.extensions import redis_options
from tests.production.conftest import REDIS_URL, redis_skip_reason

pytestmark = pytest.mark.skipif(bool(redis_skip_reason()), reason="Redis not reachable")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(REDIS_URL, **redis_options())
    yield found
    found.close()


class Counted(RedisVersions):
    """RedisVersions whose `MGET`s are counted."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.mgets = 0
        execute = self.commands.execute

        def counted(*command: Any) -> Any:
            self.mgets += 1
            return execute(*command)

        self.commands.execute = counted  # type: ignore[method-assign]


def proven(store: Counted, account: str) -> Any:
    """Reads until the copy serves (its first PING answered): what it then holds."""
    for _ in range(200):
        before = store.mgets
        versions = store.read(account, "")
        if store.mgets == before:
            return versions
        time.sleep(0.005)
    raise AssertionError("the copy never served")


def current(store: RedisVersions, name: str) -> tuple[int, int, int]:
    versions = store.read(name, "")
    assert versions is not None
    return versions


def account() -> str:
    return "acct-" + secrets.token_hex(6)


def test_held_versions_cost_no_round_trip_and_equal_redis(client: redis.Redis) -> None:
    store, name = Counted(client), account()
    client.set(f"idp:v:a:{name}", 7)
    versions = proven(store, name)
    before = store.mgets
    assert [store.read(name, "") for _ in range(20)] == [versions] * 20
    assert store.mgets == before
    assert versions is not None and versions[1] == 7
    assert versions == RedisVersions.__new__(RedisVersions)._versions(
        client.mget(RedisVersions.GLOBAL, f"idp:v:a:{name}", "idp:v:t:"))


def test_another_processes_change_is_read_at_once(client: redis.Redis) -> None:
    """Another client's INCR (another process's bump): the next read asks Redis again."""
    store, name = Counted(client), account()
    first = current(store, name) if proven(store, name) else None
    assert first is not None
    client.incr(f"idp:v:a:{name}")  # answered: Redis has written the invalidation too
    deadline = time.monotonic() + 1
    while store.read(name, "") == first:  # loopback: at once (the loop is only a bound)
        assert time.monotonic() < deadline, "the change was never seen"
    assert current(store, name)[1] == first[1] + 1


def test_this_processes_own_change_is_read_at_once(client: redis.Redis) -> None:
    store, name = Counted(client), account()
    first = current(store, name) if proven(store, name) else None
    assert first is not None
    store.bump([name], [], False)
    assert current(store, name)[1] == first[1] + 1  # no waiting at all: forgotten by the bump
    store.bump([], [], True)
    assert current(store, name)[0] == first[0] + 1


def test_a_flush_drops_everything_held(client: redis.Redis) -> None:
    store, name = Counted(client), account()
    proven(store, name)
    other = redis.Redis.from_url(REDIS_URL.rsplit("/", 1)[0] + "/15", **redis_options())
    other.flushdb()  # another database's flush: Redis says "flushed", the copy starts over
    other.close()
    deadline = time.monotonic() + 1
    while store.copy is not None and store.copy._values:  # noqa: SLF001
        store.copy.held(["idp:v:all"])
        assert time.monotonic() < deadline
    before = store.mgets
    store.read(name, "")
    assert store.mgets == before + 1


def test_a_change_racing_a_read_is_not_overwritten_by_it(client: redis.Redis) -> None:
    """The read's MGET sees the old value; the change lands before the value is kept: the
    copy keeps nothing, and the next read asks Redis (and sees the change)."""
    store, name = Counted(client), account()
    proven(store, name)
    store.copy.forget([f"idp:v:a:{name}"], False)  # type: ignore[union-attr]
    execute = store.commands.execute

    def stale_then_changed(*command: Any) -> Any:
        answer = execute(*command)  # the old versions
        client.incr(f"idp:v:a:{name}")  # a writer, after the read, before the keep
        return answer

    store.commands.execute = stale_then_changed  # type: ignore[method-assign]
    old = current(store, name)
    store.commands.execute = execute  # type: ignore[method-assign]
    deadline = time.monotonic() + 1
    while store.read(name, "") == old:
        assert time.monotonic() < deadline, "the racing change was overwritten"
    assert current(store, name)[1] == old[1] + 1


def test_a_lost_connection_serves_nothing_until_a_new_one_is_proven(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, name = Counted(client), account()
    proven(store, name)
    client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # every tracking connection
    before = store.mgets
    for _ in range(3):
        store.read(name, "")
    assert store.mgets == before + 3  # read from Redis: no connection keeps the copy (for now)
    monkeypatch.setattr(store.copy, "_retry_at", 0.0)  # the retry's pause, over
    assert proven(store, name) == store.read(name, "")  # a new connection, proven again


def test_an_unanswered_ping_stops_the_copy(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that died silently (no close seen): once the last answered PING is older
    than PROVEN_FOR, every read goes to Redis."""
    store, name = Counted(client), account()
    proven(store, name)
    copy = store.copy
    assert copy is not None
    monkeypatch.setattr(copy, "_take_in", lambda: None)  # nothing arrives any more
    monkeypatch.setattr(version_tracking, "PROVEN_FOR", 0.0)
    time.sleep(0.01)
    before = store.mgets
    store.read(name, "")
    assert store.mgets == before + 1


def test_a_forked_child_does_not_use_its_parents_connection(client: redis.Redis) -> None:
    """The child starts with nothing of its parent's: not its connection, not its values,
    not its lock (held here at the fork, as by another thread of the parent)."""
    store, name = Counted(client), account()
    proven(store, name)
    read, write = os.pipe()
    copy = store.copy
    assert copy is not None
    with copy._this_process():  # noqa: SLF001 - another thread's, at the fork
        pid = os.fork()
        if pid == 0:  # the child: its first reads go to Redis, then its own copy serves
            try:
                before = store.mgets
                store.read(name, "")
                store.bump([account()], [], False)  # takes the lock: the child's own
                served = proven(store, name) is not None
                os.write(write, b"ok" if store.mgets > before and served else b"no")
            finally:
                os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 2) == b"ok"
    before = store.mgets
    store.read(name, "")
    assert store.mgets == before  # the parent's copy still serves


def test_a_redis_refusing_tracking_is_read_with_mget(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A managed Redis that forbids `CLIENT TRACKING` (an ACL, a proxy): the process reads the
    versions as before, and does not ask again."""
    asked: list[tuple[Any, ...]] = []
    ask = version_tracking._ask

    def refusing(sock: Any, reader: Any, command: tuple[Any, ...]) -> Any:
        asked.append(command)
        if command[:2] == ("CLIENT", "TRACKING"):
            return ask(sock, reader, ("CLIENT", "TRACKING", "NOT-AN-OPTION"))
        return ask(sock, reader, command)

    monkeypatch.setattr(version_tracking, "_ask", refusing)
    store, name = Counted(client), account()
    for _ in range(5):
        assert store.read(name, "") == store.read(name, "")
    assert store.mgets == 10
    assert sum(command[:2] == ("CLIENT", "TRACKING") for command in asked) == 1
