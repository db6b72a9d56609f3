"""Per-process caches of what the hot paths read (token state, claims), kept exact across
processes by version numbers that every change bumps.

A cached answer is stored with the versions read *before* the database was read, and served
only while the versions read now are the same. Every commit that wrote an account, an identity,
a profile claim or a revoked access token bumps the versions it touched *after* the commit
(SQLAlchemy session events below, whichever code path wrote the rows), so:

- a revoked token, a disabled account, a merged-away account or an edited profile is seen by
  every process on its next request (no SQL; no Redis round trip either while nothing changed:
  each process holds the versions Redis tells it of every change to, `idp.version_tracking`);
- a reader that raced a writer stored its answer under the old versions, which no longer match.

The versions live in Redis when `IDP_REDIS_URL` is set (all processes on all hosts), else in a
small shared file in the instance directory (all processes of this host: `idp serve`'s workers
and the `idp` command line). When the versions cannot be read the caches are bypassed.

Three counters per read: one for everything (bulk changes whose rows are not known; also a
random start value, so that a flushed Redis invalidates every entry), one for the account, one
for the access token's `jti`. Entries are bounded (LRU) and expire after `MAX_AGE` seconds
whatever the versions say. Keys are account ids, `jti`s and scopes, never a token or a secret.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import secrets
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from flask import Flask, current_app, g, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from idp.extensions import db
from idp.redis_commands import HeldConnections
from idp.version_tracking import VersionCopy

log = logging.getLogger(__name__)

Versions = tuple[int, int, int]
V = TypeVar("V")

MAX_AGE = 30.0  # seconds: the bound on staleness if a bump is ever lost (a Redis hiccup)
REDIS_TTL = 86_400  # per-account and per-jti counters; far longer than MAX_AGE
WATCHED_TABLES = frozenset(
    {"account", "identity", "profile_claim", "revoked_access_token", "login_session"}
)
# Rows that change every cached answer at once: `idp tokens revoke-all` (a cut-off for every
# token) and a claim declared or changed in the data dictionary (every served profile); also a
# WeChat app registered or changed (rare; `idp.wechat_login.upstream.configured_client`).
GLOBAL_TABLES = frozenset({"token_cutoff", "claim_declaration", "wechat_app"})


class BoundedCache(Generic[V]):
    """A thread-safe LRU of at most `max_entries`, each valid for its versions and `max_age`."""

    def __init__(self, max_entries: int, max_age: float = MAX_AGE) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self._entries: OrderedDict[Any, tuple[Versions, float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, versions: Versions) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] != versions or entry[1] <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[2]

    def peek(self, key: Any) -> V | None:
        """The entry under `key` whatever its versions (to learn which versions to read for
        it); serve it only through `get`."""
        entry = self._entries.get(key)
        return None if entry is None else entry[2]

    def put(self, key: Any, versions: Versions, value: V) -> None:
        with self._lock:
            self._entries[key] = (versions, time.monotonic() + self.max_age, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class RedisVersions:
    GLOBAL = "idp:v:all"

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.commands = HeldConnections(redis)  # the MGET runs on every token check
        # The versions this process holds while Redis says they did not change.
        self.copy = VersionCopy.for_client(redis)

    def read(self, account_id: str, jti: str) -> Versions | None:
        command = self._keys(account_id, jti)
        keys, epoch = command[1:], -1
        if self.copy is not None:
            held, epoch = self.copy.held(keys)
            if held is not None:
                return self._versions(held)
        try:
            answer = self.commands.execute(*command)
            versions = self._versions(answer)
        except Exception:  # noqa: BLE001 - no versions, no cache: the database answers
            log.warning("cache versions unavailable in Redis; reading the database")
            return None
        if self.copy is not None and versions is not None:
            self.copy.keep(keys, answer, epoch)
        return versions

    def read_along(self, command: tuple[Any, ...], account_id: str,
                   jti: str) -> tuple[Any, Versions | None]:
        """`command`'s answer (an error reply as its exception, not raised) and `read`'s
        versions, both in one round trip; a connection failure is raised. A `GET` travels as
        one more key of the versions' `MGET` (one command to send and parse, not two)."""
        if len(command) == 2 and command[0] == "GET":
            *keys, answer = self.commands.execute(*self._keys(account_id, jti), command[1])
            try:
                return answer, self._versions(keys)
            except Exception:  # noqa: BLE001 - no versions, no cache: the database answers
                log.warning("cache versions unavailable in Redis; reading the database")
                return answer, None
        answer, keys = self.commands.execute_many(command, self._keys(account_id, jti))
        try:
            return answer, (None if isinstance(keys, Exception) else self._versions(keys))
        except Exception:  # noqa: BLE001 - no versions, no cache: the database answers
            log.warning("cache versions unavailable in Redis; reading the database")
            return answer, None

    def _keys(self, account_id: str, jti: str) -> tuple[str, ...]:
        return ("MGET", self.GLOBAL, f"idp:v:a:{account_id}", f"idp:v:t:{jti}")

    def _versions(self, answer: list[Any]) -> Versions | None:
        everything, account, token = answer
        if everything is None:  # first use, or Redis lost its data: a random new start
            self.redis.set(self.GLOBAL, secrets.randbits(62), nx=True)
            return None
        return int(everything), int(account or 0), int(token or 0)

    def bump(self, account_ids: Iterable[str], jtis: Iterable[str], everything: bool) -> None:
        keys = [f"idp:v:a:{a}" for a in account_ids] + [f"idp:v:t:{t}" for t in jtis]
        try:
            pipe = self.redis.pipeline(transaction=False)
            if everything:
                pipe.incr(self.GLOBAL)
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, REDIS_TTL)
            pipe.execute()
        except Exception:  # noqa: BLE001 - the entries expire within MAX_AGE anyway
            log.error("cache versions not bumped in Redis; stale for up to %s s", MAX_AGE)
        finally:
            if self.copy is not None:  # this process reads its own change at once
                self.copy.forget(keys, everything)


class FileVersions:
    """Counters in a memory-mapped file shared by the processes of one host. Slot 0 is the
    global counter; accounts and `jti`s hash into the other slots (a collision only costs a
    miss). Increments take an exclusive `flock`; reads are plain loads from the mapping."""

    SLOTS = 1 << 14
    SIZE = 8 * SLOTS

    def __init__(self, path: Path) -> None:
        import fcntl

        self._fcntl = fcntl
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size < self.SIZE:
                os.ftruncate(fd, self.SIZE)
                os.pwrite(fd, struct.pack("<Q", secrets.randbits(62)), 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, self.SIZE)
        finally:
            self._fd = fd

    @classmethod
    def _slot(cls, kind: str, value: str) -> int:
        digest = hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=8).digest()
        return 1 + int.from_bytes(digest, "little") % (cls.SLOTS - 1)

    def _load(self, slot: int) -> int:
        return int(struct.unpack_from("<Q", self._map, slot * 8)[0])

    def read(self, account_id: str, jti: str) -> Versions | None:
        return (
            self._load(0),
            self._load(self._slot("a", account_id)),
            self._load(self._slot("t", jti)),
        )

    def bump(self, account_ids: Iterable[str], jtis: Iterable[str], everything: bool) -> None:
        slots = {self._slot("a", a) for a in account_ids} | {self._slot("t", t) for t in jtis}
        if everything:
            slots.add(0)
        self._fcntl.flock(self._fd, self._fcntl.LOCK_EX)
        try:
            for slot in slots:
                struct.pack_into("<Q", self._map, slot * 8, self._load(slot) + 1)
        finally:
            self._fcntl.flock(self._fd, self._fcntl.LOCK_UN)


def versions_for(account_id: str, jti: str) -> Versions | None:
    """The versions of (account, token) as of now; read once per request and reused."""
    store = current_app.extensions.get("idp_cache_versions")
    if store is None:
        return None
    memo: dict[tuple[str, str], Versions | None] = g.setdefault("idp_cache_versions", {})
    key = (account_id, jti)
    if key not in memo:
        memo[key] = store.read(account_id, jti)
    return memo[key]


def read_along(command: tuple[Any, ...], account_id: str, jti: str) -> tuple[bool, Any]:
    """(True, `command`'s answer) when it was sent to the versions' Redis together with the
    versions of (account, token), which this request's `versions_for` then gives without
    another round trip; (False, None) when the versions are not in Redis. `command` must be
    meant for that same Redis. A connection failure is raised."""
    store = current_app.extensions.get("idp_cache_versions")
    if not isinstance(store, RedisVersions):
        return False, None
    answer, versions = store.read_along(command, account_id, jti)
    if versions is not None:
        g.setdefault("idp_cache_versions", {})[(account_id, jti)] = versions
    return True, answer


def shares_versions_redis(redis: Any) -> bool:
    """Whether the client `redis` talks to the Redis the versions are read from (both are
    IDP_REDIS_URL's unless a deployment's configuration set them apart): then a command for it
    may travel with the versions (`read_along`). Decided once per client."""
    shared: bool | None = getattr(redis, "_idp_shares_versions", None)
    if shared is None:
        store = current_app.extensions.get("idp_cache_versions")
        mine = redis.connection_pool.connection_kwargs
        theirs = (store.redis.connection_pool.connection_kwargs
                  if isinstance(store, RedisVersions) else {})
        shared = redis._idp_shares_versions = bool(theirs) and all(
            mine.get(name) == theirs.get(name)
            for name in ("host", "port", "path", "db", "username"))
    return shared


def uncommitted_changes() -> bool:
    """Rows written in this transaction are not in any version yet (bumped at commit): what
    they change is then read from the database, never from a cache."""
    if not db.session.registry.has():
        return False  # no session in this request yet: nothing written (and none made here)
    session = db.session()  # the request's session itself, not the scoped proxy each time
    return bool(
        session.new or session.dirty or session.deleted or session.info.get("idp_cache_changes")
    )


# --- invalidation: every commit that wrote a watched row bumps its versions ------------------


def _changes(session: Session) -> dict[str, Any]:
    return session.info.setdefault(
        "idp_cache_changes", {"accounts": set(), "jtis": set(), "everything": False}
    )


def _note_flushed(session: Session, *_: Any) -> None:
    changes = None
    for instance in (*session.new, *session.dirty, *session.deleted):
        table = getattr(instance, "__tablename__", None)
        if table in GLOBAL_TABLES:
            _changes(session)["everything"] = True
            continue
        if table not in WATCHED_TABLES:
            continue
        changes = changes or _changes(session)
        if table == "account":
            changes["accounts"].add(str(instance.id))
        elif table == "revoked_access_token":
            changes["jtis"].add(str(instance.jti))
        elif instance.account_id is not None:  # identity, profile_claim
            changes["accounts"].add(str(instance.account_id))
            # An identity moved to another account (merge, relink) changes the old one too.
            history = _attribute_history(instance, "account_id")
            changes["accounts"].update(str(old) for old in history if old is not None)


def _attribute_history(instance: Any, name: str) -> list[Any]:
    from sqlalchemy import inspect

    try:
        return list(inspect(instance).attrs[name].history.deleted or ())
    except Exception:  # noqa: BLE001 - no history: nothing more to bump
        return []


def _note_bulk(state: Any) -> None:
    """`update(Identity)…` and the like on a watched table: rows unknown, so everything is
    bumped (as for a statement whose table is not known). A write to any other table — the
    authorization code's `INSERT` of every authorization request, on SQLite — bumps nothing."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    mapper = state.bind_mapper
    table = getattr(getattr(mapper, "local_table", None), "name", None)
    if table is None:  # a Core statement: its own table
        table = getattr(getattr(state.statement, "table", None), "name", None)
    if table in WATCHED_TABLES or table in GLOBAL_TABLES or table is None:
        _changes(state.session)["everything"] = True


def _bump_after_commit(session: Session) -> None:
    changes = session.info.pop("idp_cache_changes", None)
    if not changes or not has_app_context():
        return
    store = current_app.extensions.get("idp_cache_versions")
    if store is not None and (changes["everything"] or changes["accounts"] or changes["jtis"]):
        store.bump(changes["accounts"], changes["jtis"], changes["everything"])
        g.pop("idp_cache_versions", None)  # this request's reads since are of the new versions


# After the flush (ids assigned, attribute history still there); a rolled-back change is bumped
# all the same at the session's next commit, which costs a miss and nothing else.
event.listen(Session, "after_flush", _note_flushed)
event.listen(Session, "do_orm_execute", _note_bulk)
event.listen(Session, "after_commit", _bump_after_commit)


def init_app(app: Flask) -> None:
    redis = app.extensions.get("idp_redis")
    if redis is not None:
        app.extensions["idp_cache_versions"] = RedisVersions(redis)
    else:
        path = Path(app.instance_path) / "cache-versions"
        app.extensions["idp_cache_versions"] = FileVersions(path)
