"""The WeChat exchange's reads of the shared cache versions (`idp.caching`) travel with the
token endpoint's rate limit: with Redis, its one round trip reads the versions the configured
WeChat app is kept under (`idp.wechat_login.upstream.configured_client`)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.production.conftest import REDIS_URL, redis_skip_reason
from tests.wechat_login.conftest import mini_login

pytestmark = pytest.mark.skipif(bool(redis_skip_reason()), reason="Redis not reachable")


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "IDP_REDIS_URL": REDIS_URL, "RATELIMIT_ENABLED": True,
            "IDP_TOKEN_RATE_LIMIT": "100/minute"}


def test_a_returning_users_exchange_reads_the_shared_versions_with_the_rate_limit__rfc8693_2_1(
    client: Any, control: Any, mini_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.caching import RedisVersions

    redis.Redis.from_url(REDIS_URL).flushdb()
    mini_login(client, control, mini_client, "returning-user")  # the first login
    alone: list[tuple[str, str]] = []
    read = RedisVersions.read
    monkeypatch.setattr(RedisVersions, "read", lambda self, account_id, jti: (
        alone.append((account_id, jti)), read(self, account_id, jti))[1])
    tokens = mini_login(client, control, mini_client, "returning-user")
    assert tokens["access_token"] and tokens["id_token"]
    assert ("", "") not in alone  # the WeChat app's versions came with the rate limit's answer
    assert len(alone) == 1  # the account's, for its claims, once known
