"""Event, outbound and API settings are checked at start-up: a typo fails loudly, not later."""

from __future__ import annotations

from typing import Any

import pytest

from idp.config import load_config
from idp.errors import ConfigError


@pytest.mark.parametrize(("name", "value"), [
    ("IDP_AMQP_BODY", "xml"),
    ("IDP_OUTBOUND_ALLOWED_NETWORKS", "10.0.0.0/8 intranet"),
    ("IDP_API_RATE_LIMIT", "lots"),
    ("IDP_EVENT_RETRY_CEILING_DAYS", "forever"),
    ("IDP_EVENT_RETRY_CEILING_DAYS", "inf"),
    ("IDP_EVENT_RETRY_MAX_SECONDS", "0"),
])
def test_a_bad_setting_stops_the_start(tmp_path: Any, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({"IDP_INSTANCE_PATH": str(tmp_path), name: value})


def test_the_settings_come_from_the_environment(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("IDP_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    monkeypatch.setenv("IDP_OUTBOUND_ALLOWED_NETWORKS", "10.1.2.0/24")
    monkeypatch.setenv("IDP_API_RATE_LIMIT", "5/second")
    monkeypatch.setenv("IDP_EVENT_RETRY_CEILING_DAYS", "14")
    config = load_config({"IDP_INSTANCE_PATH": str(tmp_path)})
    assert config["IDP_AMQP_URL"].startswith("amqp://")
    assert config["IDP_OUTBOUND_ALLOWED_NETWORKS"] == "10.1.2.0/24"
    assert config["IDP_API_RATE_LIMIT"] == "5/second"
    assert config["IDP_EVENT_RETRY_CEILING_DAYS"] == "14"
