"""`idp sms send-test` (CONTRACT §8) against the fake providers, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from idp.sms.fake import FakeSmsServer
from tests.sms.conftest import provider_config

IDP = str(Path(sys.executable).with_name("idp"))


def run_idp(
    tmp_path: Path, settings: dict[str, Any], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({name: str(value) for name, value in settings.items()})
    env.update(IDP_INSTANCE_PATH=str(tmp_path / "instance"),
               IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'idp.sqlite3'}")
    return subprocess.run(
        [IDP, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_send_test_sends_one_message_and_prints_the_answer(
    tmp_path: Path, fake_sms: FakeSmsServer, provider: str
) -> None:
    settings = provider_config(provider, fake_sms.base_url)
    result = run_idp(tmp_path, settings, "sms", "send-test", "--phone", "138 0013 8000",
                     "--purpose", "reset")
    assert result.returncode == 0, result.stderr
    [message] = fake_sms.control.messages("+8613800138000")
    assert f"message_id={message['message_id']}" in result.stdout
    assert settings["IDP_SMS_KEY_SECRET"] not in result.stdout + result.stderr


def test_send_test_reports_the_providers_refusal(tmp_path: Path, fake_sms: FakeSmsServer) -> None:
    settings = {**provider_config("aliyun", fake_sms.base_url), "IDP_SMS_KEY_SECRET": "wrong"}
    result = run_idp(tmp_path, settings, "sms", "send-test", "--phone", "13800138000")
    assert result.returncode == 1
    assert "SignatureDoesNotMatch (credentials)" in result.stderr


def test_a_missing_template_stops_the_command_naming_the_setting(
    tmp_path: Path, fake_sms: FakeSmsServer
) -> None:
    settings = {**provider_config("tencent", fake_sms.base_url), "IDP_SMS_TEMPLATE_LOGIN": ""}
    result = run_idp(tmp_path, settings, "sms", "send-test", "--phone", "13800138000")
    assert result.returncode != 0
    assert "IDP_SMS_TEMPLATE_LOGIN" in result.stderr
