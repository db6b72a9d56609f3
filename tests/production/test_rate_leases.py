"""`idp.oidc.hot_paths.rate_leases`: a busy client's token-endpoint hits reserved in advance
per process. Every hit is counted in the shared window before it is allowed, so no client
gets more than its limit across processes (RFC 6749 §5.2's 429 past it), and a limit under
128 per window is counted hit by hit as before."""

from __future__ import annotations

import os
import uuid
from typing import Any
from unittest import mock

import pytest
import redis
from flask import Flask

from idp import create_app
from idp.oidc.hot_paths import rate_leases
from idp.oidc.hot_paths.rate_leases import Leases
from idp.redis_commands import HeldConnections
from tests.production.conftest import REDIS_URL, redis_skip_reason

# --- the leases alone ----------------------------------------------------------------------------


def test_limits_under_128_a_window_are_never_leased() -> None:
    assert rate_leases.most(3) == 1
    assert rate_leases.most(127) == 1
    assert rate_leases.most(128) == 2
    assert rate_leases.most(200) == 3
    assert rate_leases.most(1_000_000) == 64


def test_a_lease_starts_at_one_hit_and_doubles_while_granted_in_full() -> None:
    leases = Leases()
    asked = []
    for _ in range(8):
        ask = leases.ask("w", 16)
        asked.append(ask)
        leases.answered("w", ask, 16, allowed=True, extra=ask - 1, milliseconds_left=60_000)
        while leases.take("w"):
            pass
    assert asked == [1, 2, 4, 8, 16, 16, 16, 16]


def test_reserved_hits_are_taken_one_by_one_then_asked_again() -> None:
    leases = Leases()
    assert not leases.take("w")  # nothing held: a round trip
    leases.answered("w", 4, 16, allowed=True, extra=3, milliseconds_left=60_000)
    assert [leases.take("w") for _ in range(4)] == [True, True, True, False]


def test_a_refusal_or_a_short_grant_starts_the_lease_over() -> None:
    leases = Leases()
    leases.answered("w", 8, 16, allowed=True, extra=2, milliseconds_left=60_000)  # near the limit
    assert leases.ask("w", 16) == 1
    leases.answered("w", 1, 16, allowed=True, extra=0, milliseconds_left=60_000)
    assert leases.ask("w", 16) == 2
    leases.answered("w", 2, 16, allowed=False, extra=0, milliseconds_left=60_000)
    assert leases.ask("w", 16) == 1
    assert [leases.take("w") for _ in range(3)] == [True, True, False]  # the two reserved above


def test_a_lease_ends_with_its_window() -> None:
    leases = Leases()
    leases.answered("w", 4, 16, allowed=True, extra=3, milliseconds_left=1)  # ends in 1 ms
    assert not leases.take("w")  # the margin: gone before the window is
    leases.answered("w", 4, 16, allowed=True, extra=3, milliseconds_left=-1)  # no TTL known
    assert not leases.take("w")


def test_threads_leases_of_one_window_add_up() -> None:
    leases = Leases()
    leases.answered("w", 4, 16, allowed=True, extra=3, milliseconds_left=60_000)
    leases.answered("w", 4, 16, allowed=True, extra=3, milliseconds_left=60_000)
    assert sum(leases.take("w") for _ in range(8)) == 6


def test_too_many_clients_drop_every_lease_never_adding_hits() -> None:
    leases = Leases()
    leases.answered("busy", 4, 16, allowed=True, extra=3, milliseconds_left=60_000)
    for index in range(rate_leases.MAX_CLIENTS):
        leases.answered(f"c{index}", 1, 16, allowed=True, extra=0, milliseconds_left=60_000)
    assert not leases.take("busy")


def test_a_forked_child_does_not_use_its_parents_leases() -> None:
    leases = Leases()
    with mock.patch("os.getpid", return_value=os.getpid() + 1):
        assert not leases.mine()
    assert leases.mine()


# --- against Redis, through the token endpoint ---------------------------------------------------

needs_redis = pytest.mark.skipif(bool(redis_skip_reason()), reason="Redis not reachable")


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "IDP_REDIS_URL": REDIS_URL, "RATELIMIT_ENABLED": True,
            "IDP_TOKEN_RATE_LIMIT": "256/minute"}


def _ask(app: Flask, client_id: str) -> int:
    return app.test_client().post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client_id}).status_code


def _window_count(client_id: str) -> int:
    found = redis.Redis.from_url(REDIS_URL)
    keys = list(found.scan_iter(f"*oauth-token*{client_id}*"))
    assert len(keys) == 1, keys
    return int(found.get(keys[0]) or 0)


@needs_redis
def test_a_busy_clients_hits_are_counted_in_redis_before_they_are_allowed__rfc6749_5_2(
    app: Flask
) -> None:
    client_id = "lease-" + uuid.uuid4().hex[:12]  # unknown clients count too
    sent = []
    execute = HeldConnections.execute

    def counted(self: HeldConnections, *args: Any) -> Any:
        sent.append(args[0])
        return execute(self, *args)

    with mock.patch.object(HeldConnections, "execute", counted):
        statuses = [_ask(app, client_id) for _ in range(40)]
    assert 429 not in statuses
    round_trips = sent.count("EVALSHA")
    assert round_trips < 40 / 3  # 1, 2, 4 then 4 at a time (256/minute: leases of 4)
    counted_in_redis = _window_count(client_id)
    assert 40 <= counted_in_redis <= 40 + rate_leases.most(256) - 1


@needs_redis
def test_two_processes_leasing_one_window_never_exceed_the_limit__rfc6749_5_2(
    app: Flask, app_config: dict[str, Any]
) -> None:
    """Two apps (each its own store client and leases: two processes' worth) share one window
    in Redis; asked alternately, together they allow no more than the limit, and refuse at most
    what each may hold reserved early."""
    other = create_app(app_config)
    client_id = "lease-" + uuid.uuid4().hex[:12]
    statuses = [_ask(app if index % 2 else other, client_id) for index in range(300)]
    allowed = [status for status in statuses if status != 429]
    assert 256 - 2 * rate_leases.most(256) <= len(allowed) <= 256
    assert set(statuses[-30:]) == {429}
