"""Throttles on credential checks and SMS sends, counted in one store that every process of
the IdP shares: Redis when `IDP_REDIS_URL` is set, otherwise a SQLite file under `instance/`
(idp/security/shared_store.py) that every worker of this machine shares. `idp serve` says so at
start when the database suggests more than one machine.

Password attempts lock out progressively: a few failures lock the (account, address) pair for a
short while, more failures lock longer. Lockouts always expire by themselves, and a password
reset by SMS code clears them, so an attacker can slow a victim down but never lock them out for
good. Failures are also counted per address, which stops one address spraying many accounts.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from flask import Flask, current_app, request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter

from idp.extensions import redis_options
from idp.security.shared_store import SqliteThrottleStorage

log = logging.getLogger(__name__)

# Progressive: each tier only starts refusing after the previous one has been exhausted.
PASSWORD_FAILURES_PER_ACCOUNT_AND_ADDRESS = ("5/15 minutes", "10/hour", "20/day")
PASSWORD_FAILURES_PER_ADDRESS = ("30/15 minutes", "100/day")
# SMS sends count in moving windows: "1/minute" is 60 s since the last send.
SMS_SENDS_PER_PHONE = ("1/minute", "5/hour", "10/day")
SMS_SENDS_PER_ADDRESS = ("10/hour", "30/day")
SMS_SENDS_PER_ADDRESS_BLOCK = ("30/hour", "100/day")  # a /24 (IPv4) or a /48 (IPv6)
THROTTLE_FILE = "throttles.sqlite3"


class Throttled(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"too many attempts; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Throttle:
    name: str
    limits: tuple[str, ...]
    moving: bool = False  # moving windows (SMS), or fixed windows (password failures)

    def _items(self) -> list[RateLimitItem]:
        return [parse(text) for text in self.limits]

    def _strategy(self) -> RateLimiter:
        strategies = _shared_strategies()
        return strategies[1] if self.moving else strategies[0]

    def acquire(self, *keys: str) -> None:
        """Count one, atomically per tier, or raise Throttled (with the wait) when a tier is full:
        two processes can never both take the last slot."""
        if not _enabled():
            return
        for item in self._items():
            try:
                strategy = self._strategy()
                taken = strategy.hit(item, self.name, *keys)
            except Exception:  # noqa: BLE001 - storage down: count in this process meanwhile
                log.warning("throttle storage unavailable for %s; counting per process", self.name)
                strategy = _per_process_limiter(self.moving)
                taken = strategy.hit(item, self.name, *keys)
            if not taken:
                reset_at, _remaining = strategy.get_window_stats(item, self.name, *keys)
                raise Throttled(max(1, math.ceil(reset_at - time.time())))

    def used(self, *keys: str) -> int:
        """How many the tightest-but-longest tier holds now (for risk decisions)."""
        if not _enabled():
            return 0
        item = self._items()[-1]
        try:
            _reset, remaining = self._strategy().get_window_stats(item, self.name, *keys)
        except Exception:  # noqa: BLE001
            _reset, remaining = _per_process_limiter(self.moving).get_window_stats(
                item, self.name, *keys
            )
        return item.amount - remaining

    def check(self, *keys: str) -> None:
        """Raise Throttled if any tier is exhausted for these keys (does not count)."""
        if not _enabled():
            return
        for item in self._items():
            try:
                self._check(self._strategy(), item, keys)
            except Throttled:
                raise
            except Exception:  # noqa: BLE001 - storage down: count in this process meanwhile
                log.warning("throttle storage unavailable for %s; counting per process", self.name)
                self._check(_per_process_limiter(self.moving), item, keys)

    def _check(self, strategy: RateLimiter, item: RateLimitItem, keys: tuple[str, ...]) -> None:
        if not strategy.test(item, self.name, *keys):
            reset_at, _remaining = strategy.get_window_stats(item, self.name, *keys)
            raise Throttled(max(1, math.ceil(reset_at - time.time())))

    def hit(self, *keys: str) -> None:
        if not _enabled():
            return
        for item in self._items():
            try:
                self._strategy().hit(item, self.name, *keys)
            except Exception:  # noqa: BLE001
                log.warning("throttle storage unavailable for %s; counting per process", self.name)
                _per_process_limiter(self.moving).hit(item, self.name, *keys)

    def clear(self, *keys: str) -> None:
        for item in self._items():
            with suppress(Exception):  # storage down: nothing to clear there
                self._strategy().clear(item, self.name, *keys)
            for strategy in _PER_PROCESS.values():
                strategy.clear(item, self.name, *keys)


password_by_account = Throttle("pwd-account", PASSWORD_FAILURES_PER_ACCOUNT_AND_ADDRESS)
password_by_address = Throttle("pwd-address", PASSWORD_FAILURES_PER_ADDRESS)
sms_by_phone = Throttle("sms-phone", SMS_SENDS_PER_PHONE, moving=True)
sms_by_address = Throttle("sms-address", SMS_SENDS_PER_ADDRESS, moving=True)
sms_by_address_block = Throttle("sms-block", SMS_SENDS_PER_ADDRESS_BLOCK, moving=True)


_PER_PROCESS: dict[str, RateLimiter] = {}


def _per_process_limiter(moving: bool = False) -> RateLimiter:
    """While the shared storage (Redis) is down, throttles count in this process only: weaker
    than shared counting, but never none (docs/DEPLOYMENT.md, "When Redis is down")."""
    name = "moving" if moving else "fixed"
    if name not in _PER_PROCESS:
        storage = MemoryStorage()
        _PER_PROCESS[name] = (
            MovingWindowRateLimiter(storage) if moving else FixedWindowRateLimiter(storage)
        )
    return _PER_PROCESS[name]


def shared_storage(app: Flask) -> Storage:
    """The store every process of this IdP counts in (built once per app)."""
    found = app.extensions.get("idp_throttle_storage")
    if found is None:
        redis_url = app.config.get("IDP_REDIS_URL")
        if redis_url:
            # A redis:// URL gives the synchronous storage (async-redis:// would not).
            found = cast(Storage, storage_from_string(redis_url, **redis_options()))
        else:
            path = Path(app.config["IDP_INSTANCE_PATH"]) / THROTTLE_FILE
            found = SqliteThrottleStorage(f"idp+sqlite://{path}")
        app.extensions["idp_throttle_storage"] = found
    return found


def _shared_strategies() -> tuple[RateLimiter, RateLimiter]:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get("idp_throttle_strategies")
    if found is None:
        storage = shared_storage(app)
        found = (FixedWindowRateLimiter(storage), MovingWindowRateLimiter(storage))
        app.extensions["idp_throttle_strategies"] = found
    return found


def client_address() -> str:
    return request.remote_addr or "unknown"


def address_block(address: str) -> str:
    """The /24 of an IPv4 address, the /48 of an IPv6 one: what one subscriber or one small
    cloud tenant usually holds."""
    import ipaddress

    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


def _enabled() -> bool:
    return bool(current_app.config.get("IDP_THROTTLE_ENABLED", True))
