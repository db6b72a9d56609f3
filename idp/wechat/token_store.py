"""Where the app-wide WeChat access token is cached, so every process shares one token.

`stable_token` is rate-limited per app, and a forced refresh invalidates the previous token for
everyone: the cache and its lock must be shared by all processes that use the same appid.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.exceptions import LockError, RedisError

from idp.wechat.errors import UpstreamUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CachedToken:
    token: str = field(repr=False)
    # Epoch seconds after which the token must not be used; the client already subtracted
    # its safety margin, so a store only has to compare against the clock.
    expires_at: float


class AccessTokenStore(Protocol):
    def get(self, appid: str) -> CachedToken | None: ...

    def set(self, appid: str, token: str, expires_at: float) -> None: ...

    def delete(self, appid: str) -> None: ...

    def lock(self, appid: str) -> AbstractContextManager[Any]: ...


class MemoryAccessTokenStore:
    """One process only: fine for tests, the demo and a single-worker deployment."""

    def __init__(self) -> None:
        self._tokens: dict[str, CachedToken] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, appid: str) -> CachedToken | None:
        cached = self._tokens.get(appid)
        return cached if cached is not None and cached.expires_at > time.time() else None

    def set(self, appid: str, token: str, expires_at: float) -> None:
        self._tokens[appid] = CachedToken(token, expires_at)

    def delete(self, appid: str) -> None:
        self._tokens.pop(appid, None)

    def lock(self, appid: str) -> AbstractContextManager[Any]:
        with self._guard:
            return self._locks.setdefault(appid, threading.Lock())


class RedisAccessTokenStore:
    """Shared by every process on the same Redis; the token lives exactly until it expires."""

    def __init__(
        self,
        redis_client: Any,
        prefix: str = "idp:wechat:",
        lock_timeout: float = 30.0,
        lock_wait: float = 10.0,
    ) -> None:
        self._redis = redis_client
        self._prefix = prefix
        # A holder that dies keeps the lock at most this long.
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait

    def _key(self, appid: str) -> str:
        return f"{self._prefix}access_token:{appid}"

    def get(self, appid: str) -> CachedToken | None:
        raw = self._redis.get(self._key(appid))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            cached = CachedToken(str(data["token"]), float(data["expires_at"]))
        except (ValueError, KeyError, TypeError):
            return None  # a corrupt entry is just a cache miss
        return cached if cached.expires_at > time.time() else None

    def set(self, appid: str, token: str, expires_at: float) -> None:
        ttl = math.ceil(expires_at - time.time())
        if ttl <= 0:
            return
        payload = json.dumps({"token": token, "expires_at": expires_at})
        self._redis.set(self._key(appid), payload, ex=ttl)

    def delete(self, appid: str) -> None:
        self._redis.delete(self._key(appid))

    @contextmanager
    def lock(self, appid: str) -> Iterator[None]:
        lock = self._redis.lock(
            f"{self._prefix}access_token_lock:{appid}",
            timeout=self._lock_timeout,
            blocking_timeout=self._lock_wait,
        )
        if not lock.acquire():
            raise UpstreamUnavailable("timed out waiting for the access-token refresh lock")
        try:
            yield
        finally:
            # LockError: we outlived lock_timeout and the lock expired; nothing left to release.
            with suppress(LockError):
                lock.release()


class FailoverAccessTokenStore:
    """The primary store (Redis) while it answers, the fallback (the database) while it does not.

    Both are shared by every process, so a Redis outage neither breaks phone binding nor makes
    each process fetch its own token. `stable_token` (not forced) hands every caller the same
    token while it is valid, so processes on either side of the switch agree.
    """

    def __init__(
        self,
        primary: AccessTokenStore,
        fallback: AccessTokenStore,
        unavailable: tuple[type[BaseException], ...] = (RedisError,),
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._unavailable = unavailable

    def get(self, appid: str) -> CachedToken | None:
        try:
            return self._primary.get(appid)
        except self._unavailable:
            self._warn()
            return self._fallback.get(appid)

    def set(self, appid: str, token: str, expires_at: float) -> None:
        try:
            self._primary.set(appid, token, expires_at)
        except self._unavailable:
            self._warn()
            self._fallback.set(appid, token, expires_at)

    def delete(self, appid: str) -> None:
        try:
            self._primary.delete(appid)
        except self._unavailable:
            self._warn()
        self._fallback.delete(appid)

    @contextmanager
    def lock(self, appid: str) -> Iterator[None]:
        with ExitStack() as stack:
            try:
                stack.enter_context(self._primary.lock(appid))
            except self._unavailable:
                self._warn()
                stack.enter_context(self._fallback.lock(appid))
            yield

    @staticmethod
    def _warn() -> None:
        log.warning("WeChat token cache: Redis unavailable, using the database store")
