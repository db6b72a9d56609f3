"""Hong Kong and Macau numbers sign in by SMS (issue 23 item 9): the IdP sends the purpose's
international (国际/港澳台) template, through the real adapters, to the fake providers — which,
as the real ones, refuse a mainland template for a +852 or +853 number."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from idp.sms.fake import FakeSmsServer, serve_in_thread
from idp.sms.purposes import Purpose
from tests.accounts.test_sms_login import ask_code, enter_code
from tests.sms.conftest import (
    ALIYUN_INTL_TEMPLATES,
    ALIYUN_TEMPLATES,
    TENCENT_INTL_TEMPLATES,
    TENCENT_TEMPLATES,
    provider_config,
    register_accounts,
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSmsServer]:
    server = serve_in_thread()
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def fake_sms(fake: FakeSmsServer) -> FakeSmsServer:
    fake.control.reset()
    register_accounts(fake)
    return fake


@pytest.fixture(params=["aliyun", "tencent"])
def app_config(
    request: pytest.FixtureRequest, app_config: dict[str, Any], fake_sms: FakeSmsServer
) -> dict[str, Any]:
    return {**app_config, **provider_config(request.param, fake_sms.base_url),
            "IDP_SMS_ALLOWED_COUNTRY_CODES": "86,852,853"}


@pytest.mark.parametrize(("typed", "phone"), [
    ("+852 6123 4567", "+85261234567"),
    ("+853 6612 3456", "+85366123456"),
])
def test_a_hong_kong_or_macau_number_signs_in_with_the_international_template__issue23_9(
    app: Any, client: FlaskClient, fake_sms: FakeSmsServer, typed: str, phone: str
) -> None:
    assert ask_code(client, typed).status_code == 302
    [message] = fake_sms.control.messages(phone)
    international = ALIYUN_INTL_TEMPLATES if app.config["IDP_SMS_PROVIDER"] == "aliyun" \
        else TENCENT_INTL_TEMPLATES
    assert message["template"] == international[Purpose.LOGIN]

    assert enter_code(client, message["code"], phone=phone).status_code == 302


def test_a_mainland_number_still_gets_the_mainland_template(
    app: Any, client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    assert ask_code(client, "139 1234 5678").status_code == 302
    [message] = fake_sms.control.messages("+8613912345678")
    mainland = ALIYUN_TEMPLATES if app.config["IDP_SMS_PROVIDER"] == "aliyun" \
        else TENCENT_TEMPLATES
    assert message["template"] == mainland[Purpose.LOGIN]
    assert fake_sms.control.rejections() == []
