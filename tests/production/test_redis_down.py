"""When Redis is down (docs/DEPLOYMENT.md, "When Redis is down"): replay caches fail closed, rate
limits and throttles count per process, the WeChat token cache moves to the database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.models_base import utcnow
from tests.production.conftest import closed_port


@pytest.fixture(autouse=True)
def forget_the_dead_storage() -> Iterator[None]:
    """The limiter is one object for every app of the test process: the next test's app must
    not inherit "storage dead, use the fallback" from this one."""
    yield
    from idp.extensions import limiter

    limiter._storage_dead = False
    limiter._in_memory_fallback_enabled = False


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {
        **app_config,
        "IDP_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
        "RATELIMIT_ENABLED": True,
        "IDP_THROTTLE_ENABLED": True,
        "IDP_TOKEN_RATE_LIMIT": "3/minute",
        "IDP_CLIENT_AUTH_FAILURE_LIMIT": "2/minute",
    }


def test_the_replay_cache_fails_closed(app: Flask) -> None:
    from idp.replay import remember_once

    assert remember_once("jti:never-seen-before", utcnow() + timedelta(minutes=5)) is False


def test_token_rate_limits_degrade_to_per_process(client: FlaskClient) -> None:
    statuses = [
        client.post(
            "/oauth/token", data={"grant_type": "client_credentials", "client_id": "some-client"}
        ).status_code
        for _ in range(5)
    ]
    assert 429 not in statuses[:3]
    assert statuses[3:] == [429, 429]


def test_failed_client_authentications_count_per_process(client: FlaskClient) -> None:
    statuses = [
        client.post("/oauth/introspect", data={"token": "x"},
                    auth=("some-client", f"guess-{i}")).status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 429, 429]


def test_password_throttles_count_per_process(app: Flask) -> None:
    from idp.security.throttle import Throttle, Throttled

    throttle = Throttle("test-redis-down-" + str(time.time_ns()), ("2/minute",))
    with app.test_request_context("/login"):
        throttle.check("key")
        throttle.hit("key")
        throttle.hit("key")
        with pytest.raises(Throttled):
            throttle.check("key")
        throttle.clear("key")
        throttle.check("key")


def test_the_wechat_token_cache_moves_to_the_database(app: Flask) -> None:
    from idp.wechat.store import shared_token_store

    store = shared_token_store(app)
    with store.lock("wx-appid-redis-down"):
        assert store.get("wx-appid-redis-down") is None
        store.set("wx-appid-redis-down", "the-token", time.time() + 600)
    cached = store.get("wx-appid-redis-down")
    assert cached is not None and cached.token == "the-token"
    store.delete("wx-appid-redis-down")
    assert store.get("wx-appid-redis-down") is None


def test_readiness_does_not_depend_on_redis(client: FlaskClient) -> None:
    assert client.get("/readyz").status_code == 200
