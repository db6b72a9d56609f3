"""Abuse defences in front of the SMS provider (issue 11): limits per phone, address, address
block and the spend breaker, each refusal saying when to retry; allowed country codes; the
captcha when the limits see risk; provider refusals mapped to what the user reads; a code stored
only once the provider accepted it. Real HTTP to the fake providers on loopback."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.sms.fake import FakeSmsServer
from tests.accounts.test_sms_login import ask_code, enter_code
from tests.sms.conftest import captcha_config, provider_config

PHONE = "+8613912345678"


@pytest.fixture(params=["aliyun", "tencent"])
def app_config(
    request: pytest.FixtureRequest, app_config: dict[str, Any], fake_sms: FakeSmsServer
) -> dict[str, Any]:
    return {**app_config, **provider_config(request.param, fake_sms.base_url),
            "IDP_THROTTLE_ENABLED": True}


def from_address(address: str) -> dict[str, Any]:
    return {"REMOTE_ADDR": address}


def ask(client: FlaskClient, phone: str, address: str = "203.0.113.7", **fields: str) -> Any:
    client.environ_base.update(from_address(address))
    return ask_code(client, phone, **fields)


def text(response: Any) -> str:
    from html import unescape

    return unescape(response.get_data(as_text=True))


def test_the_code_arrives_through_the_provider_and_signs_in(
    client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    assert ask(client, PHONE).status_code == 302
    assert enter_code(client, fake_sms.control.last_code(PHONE)).status_code == 302


def test_one_code_per_phone_a_minute_and_the_refusal_says_how_long(
    client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    assert ask(client, PHONE).status_code == 302
    again = ask(client, PHONE, address="198.51.100.9")  # another address changes nothing
    assert again.status_code == 429
    wait = int(again.headers["Retry-After"])
    assert 55 <= wait <= 60
    assert f"Please wait {wait} seconds before asking for another code." in text(again)
    assert len(fake_sms.control.messages(PHONE)) == 1


def test_a_resend_from_the_code_page_is_refused_on_the_code_page(
    client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    ask(client, PHONE)
    resend = ask(client, PHONE, origin="code")
    assert resend.status_code == 429 and 'id="resend"' in text(resend)
    assert "seconds before asking for another code" in text(resend)


def test_five_codes_an_hour_per_phone(
    app: Flask, client: FlaskClient, fake_sms: FakeSmsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.security import throttle

    # The minute tier is exercised above; here only the hour tier counts.
    monkeypatch.setattr(
        throttle, "sms_by_phone", throttle.Throttle("sms-phone", ("5/hour", "10/day"), True)
    )
    statuses = [ask(client, PHONE, address=f"198.51.{n}.1").status_code for n in range(6)]
    assert statuses == [302] * 5 + [429]


def test_one_address_cannot_pump_many_numbers(
    client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    statuses = [ask(client, f"+86139000{n:05d}").status_code for n in range(11)]
    assert statuses == [302] * 10 + [429]
    assert len(fake_sms.control.messages()) == 10


def test_one_address_block_cannot_pump_either(
    client: FlaskClient, fake_sms: FakeSmsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.security import throttle

    monkeypatch.setattr(
        throttle, "sms_by_address_block", throttle.Throttle("sms-block", ("3/hour",), True)
    )
    statuses = [
        ask(client, f"+86139000{n:05d}", address=f"203.0.113.{n + 1}").status_code
        for n in range(4)
    ]
    assert statuses == [302, 302, 302, 429]
    # The next block is not affected.
    assert ask(client, "+8613900099999", address="203.0.114.1").status_code == 302


def test_the_spend_breaker_stops_every_send_for_the_hour(
    app: Flask, client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    app.config["IDP_SMS_HOURLY_BUDGET"] = 2
    statuses = [
        ask(client, f"+86139000{n:05d}", address=f"10.{n}.0.1").status_code for n in range(3)
    ]
    assert statuses == [302, 302, 429]


def test_only_allowed_country_codes(
    app: Flask, client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    refused = ask(client, "+1 202 555 0143")
    assert refused.status_code == 400 and "+86" in text(refused)
    assert fake_sms.control.messages() == []
    app.extensions["idp_sms_countries"] = frozenset({86, 1})
    assert ask(client, "+1 202 555 0143").status_code in (302, 400)  # the provider decides


@pytest.mark.parametrize(
    ("aliyun_code", "tencent_code", "status", "message"),
    [
        ("isv.DAY_LIMIT_CONTROL", "LimitExceeded.PhoneNumberDailyLimit", 429,
         "Too many codes for this number today."),
        ("isv.MOBILE_NUMBER_ILLEGAL", "InvalidParameterValue.IncorrectPhoneNumber", 400,
         "This is not a mobile number that can receive SMS."),
        ("isv.AMOUNT_NOT_ENOUGH", "FailedOperation.InsufficientBalanceInSmsPackage", 503,
         "We cannot send SMS right now."),
    ],
)
def test_provider_refusals_reach_the_user_as_words_and_store_no_code(
    app: Flask, client: FlaskClient, fake_sms: FakeSmsServer, aliyun_code: str,
    tencent_code: str, status: int, message: str,
) -> None:
    from idp.accounts.models import SmsCode

    provider = app.extensions["idp_sms"].provider
    code = aliyun_code if provider == "aliyun" else tencent_code
    fake_sms.control.arm_failure(provider, code=code)
    refused = ask(client, PHONE)
    assert refused.status_code == status and message in text(refused)
    assert db.session.query(SmsCode).count() == 0


def test_provider_refusals_are_translated(client: FlaskClient, fake_sms: FakeSmsServer) -> None:
    fake_sms.control.arm_failure("aliyun", code="isv.MOBILE_NUMBER_ILLEGAL")
    fake_sms.control.arm_failure("tencent", code="InvalidParameterValue.IncorrectPhoneNumber")
    client.set_cookie("idp_locale", "zh_CN")
    refused = ask(client, PHONE)
    assert "这不是可以接收短信的手机号码" in text(refused)


def test_a_balance_error_is_an_alert_for_the_operator_and_a_metric(
    app: Flask, client: FlaskClient, fake_sms: FakeSmsServer, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import REGISTRY

    provider = app.extensions["idp_sms"].provider
    code = "isv.AMOUNT_NOT_ENOUGH" if provider == "aliyun" else (
        "FailedOperation.InsufficientBalanceInSmsPackage")
    before = REGISTRY.get_sample_value(
        "idp_sms_sends_total", {"provider": provider, "result": code}) or 0
    fake_sms.control.arm_failure(provider, code=code)
    ask(client, PHONE)
    [record] = [r for r in caplog.records if r.name == "idp.accounts.sms_codes"]
    assert record.levelname == "ERROR" and record.sms_error == code  # type: ignore[attr-defined]
    assert record.phone == "+86139****5678"  # type: ignore[attr-defined]
    after = REGISTRY.get_sample_value(
        "idp_sms_sends_total", {"provider": provider, "result": code})
    assert after == before + 1


def test_a_provider_that_times_out_stores_no_code_and_says_try_later(
    app: Flask, client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    from idp.accounts.models import SmsCode

    app.extensions["idp_sms"].settings = type(app.extensions["idp_sms"].settings)(
        **{**app.extensions["idp_sms"].settings.__dict__, "timeout_seconds": 0.3}
    )
    fake_sms.control.arm_failure(app.extensions["idp_sms"].provider, delay=0.6)
    refused = ask(client, PHONE)
    assert refused.status_code == 503 and "Retry-After" in refused.headers
    assert db.session.query(SmsCode).count() == 0
    # The late answer still delivers (as a real provider may): let it land before the next test
    # (it lands 0.6 s after the request; waiting a fixed second took longer).
    deadline = time.monotonic() + 10
    while not fake_sms.control.messages(PHONE) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_sms.control.messages(PHONE), "the late answer never landed"


# --- captcha -------------------------------------------------------------------------------------


@pytest.fixture
def captcha_app(app: Flask, fake_sms: FakeSmsServer) -> Flask:
    from idp.sms.captcha import build_captcha
    from idp.sms.settings import CaptchaSettings

    app.config.update(captcha_config(fake_sms.base_url))
    app.config["IDP_CAPTCHA_JS_URL"] = f"{fake_sms.base_url}/TJCaptcha.js"
    app.extensions["idp_captcha"] = build_captcha(CaptchaSettings.from_config(app.config))
    return app


def test_the_captcha_is_asked_only_when_an_address_looks_risky(
    captcha_app: Flask, client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    for n in range(3):
        assert ask(client, f"+86139000{n:05d}").status_code == 302  # no captcha yet
    asked = ask(client, "+8613900000099")
    assert asked.status_code == 200 and 'id="captcha"' in text(asked)
    csp = asked.headers["Content-Security-Policy"]
    assert f"script-src 'self' {fake_sms.base_url}" in csp
    assert len(fake_sms.control.messages()) == 3

    ticket = fake_sms.control.captcha_ticket()
    sent = ask(client, "+8613900000099", captcha_ticket=ticket["ticket"],
               captcha_randstr=ticket["randstr"])
    assert sent.status_code == 302
    # A ticket is single use.
    replay = ask(client, "+8613900000098", captcha_ticket=ticket["ticket"],
                 captcha_randstr=ticket["randstr"])
    assert replay.status_code == 400 and len(fake_sms.control.messages()) == 4


def test_a_failed_captcha_sends_nothing(
    captcha_app: Flask, client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    captcha_app.config["IDP_CAPTCHA_MODE"] = "always"
    ticket = fake_sms.control.captcha_ticket(captcha_code=9)
    refused = ask(client, PHONE, captcha_ticket=ticket["ticket"], captcha_randstr=ticket["randstr"])
    assert refused.status_code == 400 and fake_sms.control.messages() == []
    forged = ask(client, PHONE, captcha_ticket="forged", captcha_randstr="x")
    assert forged.status_code == 400 and fake_sms.control.messages() == []


def test_a_captcha_service_that_does_not_answer_fails_closed(
    captcha_app: Flask, client: FlaskClient, fake_sms: FakeSmsServer
) -> None:
    captcha_app.config["IDP_CAPTCHA_MODE"] = "always"
    fake_sms.control.arm_failure("captcha", status=502)
    refused = ask(client, PHONE, captcha_ticket="t", captcha_randstr="r")
    assert refused.status_code == 503 and fake_sms.control.messages() == []
