"""Hits of a busy client's rate-limit window reserved in advance, per process: a lease.

The token endpoint's count is shared by every process (Redis, `rate_limit.py`); asking Redis
for each hit cost a round trip per token request — for client_credentials its only one, and
under load ~0.13 ms of the IdP's CPU and ~0.04 ms of Redis's (bench/README.md, "Leased
rate-limit hits"). So a process that sees a client busy asks for more than the hit at hand:
Redis counts the hit and, while the window has room, reserves up to `most(limit)` − 1 more
for this process, which takes them without asking again until they run out or the window
ends (the window's end comes back with the answer, as milliseconds to live).

What holds:
- every hit is counted in the shared window before it is allowed (a reserved hit counts when
  reserved), so no client ever gets more than the limit across all processes;
- a hit refused counts as the `limits` library counts it (the window's counter grows by one),
  with the same key: the fixed window is the same window;
- a client near its limit may be refused a little early: by the hits other processes hold
  reserved and unused, at most `most(limit)` each — 1/64 of the limit, never more than 64;
- a limit under 128 per window is never leased: every hit is a round trip, as before.

A lease starts at one hit (a client seen once reserves nothing) and doubles with each round
trip that got all it asked for; a refusal or a short grant starts it over."""

from __future__ import annotations

import os
import threading
import time

# Redis: the hit counted (the window begun, as the `limits` library's fixed window begins
# it), then up to ARGV[2] - 1 more reserved while the limit ARGV[3] leaves room.
# Returns {count after the hit, hits reserved, the window's milliseconds to live}.
LEASE_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local extra = math.min(tonumber(ARGV[2]) - 1, tonumber(ARGV[3]) - count)
if extra > 0 then redis.call('INCRBY', KEYS[1], extra) else extra = 0 end
return {count, extra, redis.call('PTTL', KEYS[1])}
"""
LARGEST = 64
MAX_CLIENTS = 1024  # leases held at once; past it they are all dropped (never more hits)
# A lease ends this much before the window it came from: the answer took time to arrive.
MARGIN_SECONDS = 0.005


def most(limit: int) -> int:
    """The largest lease for a window of `limit` hits; 1: not leased."""
    return max(1, min(LARGEST, limit // LARGEST))


class _Lease:
    __slots__ = ("ends", "left", "next_ask")

    def __init__(self) -> None:
        self.ends = 0.0
        self.left = 0
        self.next_ask = 1


class Leases:
    """This process's leases, by the window's counter key; threads share them."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._held: dict[str, _Lease] = {}

    def mine(self) -> bool:
        """False in a process forked since: its parent's leases are not its own."""
        return self._pid == os.getpid()

    def take(self, counter: str) -> bool:
        """One reserved hit of `counter`'s window taken, if this process holds one."""
        with self._lock:
            lease = self._held.get(counter)
            if lease is None or lease.left <= 0 or time.monotonic() >= lease.ends:
                return False
            lease.left -= 1
            return True

    def ask(self, counter: str, largest: int) -> int:
        """How many hits the next round trip asks for (this one included)."""
        lease = self._held.get(counter)
        return 1 if lease is None else min(lease.next_ask, largest)

    def answered(self, counter: str, asked: int, largest: int, allowed: bool, extra: int,
                 milliseconds_left: int) -> None:
        """What the round trip gave: the hit `allowed` or not, `extra` hits reserved in a
        window that ends in `milliseconds_left` (negative: no end known, nothing kept)."""
        now = time.monotonic()
        with self._lock:
            lease = self._held.get(counter)
            if lease is None:
                if len(self._held) >= MAX_CLIENTS:
                    self._held.clear()
                lease = self._held[counter] = _Lease()
            full = allowed and extra == asked - 1
            lease.next_ask = min(asked * 2, largest) if full else 1
            if milliseconds_left <= 0 or extra <= 0:
                return
            ends = now + milliseconds_left / 1000 - MARGIN_SECONDS
            # Another thread's lease of the same window adds up; an older window's is gone.
            lease.left = (lease.left if now < lease.ends else 0) + extra
            lease.ends = ends
