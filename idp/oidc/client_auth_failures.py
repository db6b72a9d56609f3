"""Failed client authentications at the introspection and revocation endpoints (RFC 7662 §2.1,
RFC 7009 §2.1: the client authenticates there as at the token endpoint), limited per client.

The token endpoint counts every request of a client before authenticating it
(IDP_TOKEN_RATE_LIMIT, `hot_paths/rate_limit.py`). Resource servers introspect and revoke at
their own pace, so these two endpoints count failures only: past IDP_CLIENT_AUTH_FAILURE_LIMIT
failed authentications naming one client (`10/minute` by default), every authentication of that
client there is refused — 429 `temporarily_unavailable` with Retry-After, as every limit of this
IdP answers — until the window ends: its right credentials too, so that guessing a secret
stops rather than slows. A client is named by its HTTP Basic user name, else the form's
`client_id`, else the `sub` of its `client_assertion` (RFC 7523 §3, read unverified: only to
count); a request that names none is refused anyway and counted nowhere.

Counted in the store every process shares (Flask-Limiter's: Redis when IDP_REDIS_URL is set);
while it is down, each process counts on its own (docs/DEPLOYMENT.md, "When Redis is down")."""

from __future__ import annotations

import logging
import math
import time
from base64 import b64decode
from binascii import Error as Base64Error
from functools import lru_cache
from typing import Any

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import RateLimiter

from idp import caching
from idp.extensions import limiter, per_process_limiter
from idp.oidc.errors import TemporarilyUnavailableError
from idp.oidc.tokens import untrusted_claims

log = logging.getLogger(__name__)
NAMESPACE = "oauth-client-auth-failed"
GUARDED_ENDPOINTS = frozenset({"introspection", "revocation"})
MAX_NAME = 64
MAX_ASSERTION = 8192


class TooManyFailedAuthentications(TemporarilyUnavailableError):
    """The client's authentications failed too often here for now."""

    status_code = 429


@lru_cache(maxsize=16)
def _items(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text))


def named_client(request: Any) -> str | None:
    """The client an authentication names (see the module), or None."""
    authorization = request.headers.get("Authorization") or ""
    if authorization[:6].lower() == "basic ":
        try:
            username = b64decode(authorization[6:].strip()).decode("utf-8").partition(":")[0]
        except (Base64Error, ValueError):
            username = ""
        return username[:MAX_NAME] or None
    form = request.payload.data if request.payload is not None else {}
    client_id = form.get("client_id")
    if isinstance(client_id, str) and client_id:
        return client_id[:MAX_NAME]
    assertion = form.get("client_assertion")
    return _assertion_subject(assertion) if isinstance(assertion, str) else None


def _assertion_subject(assertion: str) -> str | None:
    claims = untrusted_claims(assertion, max_length=MAX_ASSERTION)
    subject = claims.get("sub") if claims is not None else None
    return subject[:MAX_NAME] if isinstance(subject, str) and subject else None


def refuse_if_locked(client: str, along: tuple[str, str] | None = None) -> None:
    """Raises `TooManyFailedAuthentications` while `client`'s failures are past the limit.
    `along`: the (account, token) whose cache versions the endpoint reads next
    (`idp.caching.versions_for`; a hint, checked or not), read in the same round trip."""
    if not limiter.enabled:  # RATELIMIT_ENABLED: only tests switch limits off
        return
    for index, item in enumerate(_items(str(current_app.config["IDP_CLIENT_AUTH_FAILURE_LIMIT"]))):
        strategy = _strategy()
        try:
            allowed = _allowed(strategy, item, client, along if index == 0 else None)
        except Exception:  # noqa: BLE001 - the shared store is down: this process's counts
            log.warning("rate-limit storage unavailable for client authentication")
            strategy = per_process_limiter()
            allowed = strategy.test(item, NAMESPACE, client)
        if not allowed:
            raise TooManyFailedAuthentications(
                "Too many failed client authentications; try again later.",
                _retry_after(strategy, item, client))


def count_failure(client: str) -> None:
    """One more failed authentication naming `client`."""
    if not limiter.enabled:
        return
    for item in _items(str(current_app.config["IDP_CLIENT_AUTH_FAILURE_LIMIT"])):
        try:
            _strategy().hit(item, NAMESPACE, client)
        except Exception:  # noqa: BLE001 - the shared store is down: this process's counts
            log.warning("rate-limit storage unavailable for client authentication")
            per_process_limiter().hit(item, NAMESPACE, client)


def _allowed(strategy: RateLimiter, item: RateLimitItem, client: str,
             along: tuple[str, str] | None) -> bool:
    """The `limits` library's test of the window — its key — with the versions `along` in one
    round trip when the store is the versions' Redis (the introspection's one `MGET`)."""
    storage = strategy.storage
    if along is not None and type(storage) is RedisStorage and caching.shares_versions_redis(
            storage.storage):
        counter = storage.prefixed_key(item.key_for(NAMESPACE, client))  # the library's key
        sent, count = caching.read_along(("GET", counter), *along)
        if sent:
            if isinstance(count, Exception):
                raise count
            return int(count or 0) < item.amount
    return bool(strategy.test(item, NAMESPACE, client))


def _strategy() -> RateLimiter:
    return limiter.limiter


def _retry_after(strategy: RateLimiter, item: RateLimitItem, client: str) -> int:
    """Seconds until the window ends (at least 1); the window's length if that is unknown."""
    try:
        reset = strategy.get_window_stats(item, NAMESPACE, client).reset_time
    except Exception:  # noqa: BLE001 - the store went away since: the whole window
        return int(item.get_expiry())
    return max(1, min(int(item.get_expiry()), math.ceil(reset - time.time())))
