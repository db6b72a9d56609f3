from typing import Any

import pytest


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """These tests are about the limits the rest of the suite switches off."""
    return {
        **app_config,
        "RATELIMIT_ENABLED": True,
        "IDP_THROTTLE_ENABLED": True,
        "IDP_TOKEN_RATE_LIMIT": "5/minute",
        "IDP_PHONE_BINDING_RATE_LIMIT": "3/minute",
    }
