"""Throttles on credential checks, counted in Flask-Limiter's storage (Redis when configured,
so every process counts together; in memory otherwise).

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

from flask import current_app, request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from idp.extensions import limiter

log = logging.getLogger(__name__)

# Progressive: each tier only starts refusing after the previous one has been exhausted.
PASSWORD_FAILURES_PER_ACCOUNT_AND_ADDRESS = ("5/15 minutes", "10/hour", "20/day")
PASSWORD_FAILURES_PER_ADDRESS = ("30/15 minutes", "100/day")
SMS_SENDS_PER_PHONE = ("1/minute", "5/hour", "10/day")
SMS_SENDS_PER_ADDRESS = ("10/hour", "30/day")


class Throttled(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"too many attempts; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Throttle:
    name: str
    limits: tuple[str, ...]

    def _items(self) -> list[RateLimitItem]:
        return [parse(text) for text in self.limits]

    def check(self, *keys: str) -> None:
        """Raise Throttled if any tier is exhausted for these keys (does not count)."""
        if not _enabled():
            return
        for item in self._items():
            try:
                self._check(limiter.limiter, item, keys)
            except Throttled:
                raise
            except Exception:  # noqa: BLE001 - storage down: count in this process meanwhile
                log.warning("throttle storage unavailable for %s; counting per process", self.name)
                self._check(_per_process_limiter(), item, keys)

    def _check(self, strategy: RateLimiter, item: RateLimitItem, keys: tuple[str, ...]) -> None:
        if not strategy.test(item, self.name, *keys):
            reset_at, _remaining = strategy.get_window_stats(item, self.name, *keys)
            raise Throttled(max(1, math.ceil(reset_at - time.time())))

    def hit(self, *keys: str) -> None:
        if not _enabled():
            return
        for item in self._items():
            try:
                limiter.limiter.hit(item, self.name, *keys)
            except Exception:  # noqa: BLE001
                log.warning("throttle storage unavailable for %s; counting per process", self.name)
                _per_process_limiter().hit(item, self.name, *keys)

    def clear(self, *keys: str) -> None:
        for item in self._items():
            with suppress(Exception):  # storage down: nothing to clear there
                limiter.limiter.clear(item, self.name, *keys)
            if _PER_PROCESS:
                _per_process_limiter().clear(item, self.name, *keys)


password_by_account = Throttle("pwd-account", PASSWORD_FAILURES_PER_ACCOUNT_AND_ADDRESS)
password_by_address = Throttle("pwd-address", PASSWORD_FAILURES_PER_ADDRESS)
sms_by_phone = Throttle("sms-phone", SMS_SENDS_PER_PHONE)
sms_by_address = Throttle("sms-address", SMS_SENDS_PER_ADDRESS)


_PER_PROCESS: dict[str, RateLimiter] = {}


def _per_process_limiter() -> RateLimiter:
    """While the shared storage (Redis) is down, throttles count in this process only: weaker
    than shared counting, but never none (docs/DEPLOYMENT.md, "When Redis is down")."""
    if "limiter" not in _PER_PROCESS:
        _PER_PROCESS["limiter"] = FixedWindowRateLimiter(MemoryStorage())
    return _PER_PROCESS["limiter"]


def client_address() -> str:
    return request.remote_addr or "unknown"


def _enabled() -> bool:
    return bool(current_app.config.get("IDP_THROTTLE_ENABLED", True))
