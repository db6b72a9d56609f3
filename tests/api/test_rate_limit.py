"""Per-client rate limits of the management API (with the app's limits on, as in production)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Service
from tests.api.test_accounts_api import problem_of


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "RATELIMIT_ENABLED": True, "IDP_API_RATE_LIMIT": "3/minute",
            "IDP_REDIS_URL": None}


def test_each_client_has_its_own_rate_limit(app: Any, service: Service, make_client: Any) -> None:
    from idp.extensions import limiter

    limiter.reset()
    statuses = [service.call("GET", "/accounts").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = service.call("GET", "/accounts")
    assert int(limited.headers["Retry-After"]) >= 1 and problem_of(limited)
    other, secret = make_client(name="Other", grant_types=["client_credentials"],
                                scope="idp:accounts.read")
    second = Service(service.browser, other.client_id, secret)
    second.token = second.get_token("idp:accounts.read")
    assert second.call("GET", "/accounts").status_code == 200
