"""The token endpoint's per-client rate limit (IDP_TOKEN_RATE_LIMIT), counted with the `limits`
library in the store every process shares (Flask-Limiter's: Redis when IDP_REDIS_URL is set),
without Flask-Limiter's per-request machinery. While that store is down, each process counts on
its own in memory (docs/DEPLOYMENT.md, "When Redis is down"): weaker, never none."""

from __future__ import annotations

import logging
from base64 import b64decode
from binascii import Error as Base64Error
from functools import lru_cache
from typing import Any

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from redis.exceptions import NoScriptError

from idp import caching
from idp.extensions import limiter, per_process_limiter
from idp.oidc.hot_paths import rate_leases
from idp.oidc.hot_paths.http import HotError, HotRequest
from idp.redis_commands import HeldConnections

log = logging.getLogger(__name__)
NAMESPACE = "oauth-token"


@lru_cache(maxsize=16)
def _items(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text))


def client_key(request: HotRequest) -> str:
    """Whom a token request counts against: the Basic user name, else the form's `client_id`,
    else the caller's address (unknown clients count too)."""
    authorization = request.header("HTTP_AUTHORIZATION") or ""
    if authorization[:6].lower() == "basic ":
        try:
            username = b64decode(authorization[6:].strip()).decode("utf-8").partition(":")[0]
        except (Base64Error, ValueError):
            username = ""
        if username:
            return "client:" + username[:64]
    fallback = request.form.get("client_id") or request.environ.get("REMOTE_ADDR") or "?"
    return "client:" + fallback[:64]


def _hit(item: RateLimitItem, key: str, account: str | None = None) -> bool:
    """The `limits` library's fixed-window hit — its key, its window — counted in Redis with
    the script sent on this thread's own Redis connection (`idp.redis_commands`: half the CPU
    of the client's round trip) when the shared store is Redis; with `account`, in the same
    round trip as the cache versions the grant reads next for that account
    (`idp.caching.read_along`). A busy client's hits are leased (`rate_leases`): a hit this
    process holds reserved is taken without a round trip."""
    storage = limiter.limiter.storage
    if type(storage) is not RedisStorage:
        return bool(limiter.limiter.hit(item, NAMESPACE, key))
    counter = storage.prefixed_key(item.key_for(NAMESPACE, key))
    largest = rate_leases.most(item.amount)
    leases = _leases(storage)
    if largest > 1 and leases.take(counter):
        return True
    asked = leases.ask(counter, largest) if largest > 1 else 0
    script = _lease_script(storage) if asked else storage.lua_incr_expire
    arguments = (item.get_expiry(), asked, item.amount) if asked else (item.get_expiry(), 1)
    command = ("EVALSHA", script.sha, 1, counter, *arguments)
    answer: Any
    sent, answer = (caching.read_along(command, account, "")
                    if account is not None and caching.shares_versions_redis(storage.storage)
                    else (False, None))
    try:
        if not sent:
            answer = _held(storage).execute(*command)
        elif isinstance(answer, Exception):
            raise answer
    except NoScriptError:  # Redis restarted or flushed its scripts: the client loads it
        answer = script([counter], list(arguments))
    if not asked:
        return int(answer) <= item.amount
    count, extra, milliseconds_left = (int(value) for value in answer)
    allowed = count <= item.amount
    leases.answered(counter, asked, largest, allowed, extra, milliseconds_left)
    return allowed


def _leases(storage: RedisStorage) -> rate_leases.Leases:
    """This process's leases of the store's windows (a forked child starts with none)."""
    found: rate_leases.Leases | None = getattr(storage, "_idp_leases", None)
    if found is None or not found.mine():
        found = rate_leases.Leases()
        storage._idp_leases = found  # type: ignore[attr-defined]
    return found


def _lease_script(storage: RedisStorage) -> Any:
    found = getattr(storage, "_idp_lease_script", None)
    if found is None:
        found = storage.storage.register_script(rate_leases.LEASE_SCRIPT)
        storage._idp_lease_script = found  # type: ignore[attr-defined]
    return found


def _held(storage: RedisStorage) -> HeldConnections:
    found: HeldConnections | None = getattr(storage, "_idp_held", None)
    if found is None:
        found = HeldConnections(storage.storage)
        storage._idp_held = found  # type: ignore[attr-defined]
    return found


def check_token_rate(request: HotRequest, account: str | None = None) -> None:
    """Counts this request; 429 `temporarily_unavailable` with Retry-After past the limit.
    `account`: whose cache versions the grant will read (a hint: any id, checked or not)."""
    if not limiter.enabled:  # RATELIMIT_ENABLED: only tests switch limits off
        return
    key = client_key(request)
    for index, item in enumerate(_items(str(current_app.config["IDP_TOKEN_RATE_LIMIT"]))):
        try:
            allowed = _hit(item, key, account if index == 0 else None)
        except Exception:  # noqa: BLE001 - the shared store is down: count in this process
            log.warning("rate-limit storage unavailable for the token endpoint")
            allowed = per_process_limiter().hit(item, NAMESPACE, key)
        if not allowed:
            # Retry-After: the window's length (the exact reset costs another round trip).
            raise HotError(429, "temporarily_unavailable", str(item),
                           [("Retry-After", str(item.get_expiry()))])
