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
from dataclasses import dataclass

from flask import current_app, request
from limits import RateLimitItem, parse

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
        strategy = limiter.limiter
        for item in self._items():
            try:
                if not strategy.test(item, self.name, *keys):
                    reset_at, _remaining = strategy.get_window_stats(item, self.name, *keys)
                    raise Throttled(max(1, math.ceil(reset_at - time.time())))
            except Throttled:
                raise
            except Exception:  # noqa: BLE001 - storage down: the limiter's fallback rules apply
                log.warning("throttle storage unavailable for %s", self.name)
                return

    def hit(self, *keys: str) -> None:
        if not _enabled():
            return
        for item in self._items():
            try:
                limiter.limiter.hit(item, self.name, *keys)
            except Exception:  # noqa: BLE001
                log.warning("throttle storage unavailable for %s", self.name)
                return

    def clear(self, *keys: str) -> None:
        for item in self._items():
            try:
                limiter.limiter.clear(item, self.name, *keys)
            except Exception:  # noqa: BLE001
                return


password_by_account = Throttle("pwd-account", PASSWORD_FAILURES_PER_ACCOUNT_AND_ADDRESS)
password_by_address = Throttle("pwd-address", PASSWORD_FAILURES_PER_ADDRESS)
sms_by_phone = Throttle("sms-phone", SMS_SENDS_PER_PHONE)
sms_by_address = Throttle("sms-address", SMS_SENDS_PER_ADDRESS)


def client_address() -> str:
    return request.remote_addr or "unknown"


def _enabled() -> bool:
    return bool(current_app.config.get("IDP_THROTTLE_ENABLED", True))
