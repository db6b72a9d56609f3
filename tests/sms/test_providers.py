"""The Aliyun and Tencent adapters against the fake providers over real HTTP: signatures (pinned
to the providers' published examples, and checked by the fake with the configured secret), every
mapped error, timeouts and answers that are not answers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from idp.errors import ConfigError
from idp.sms.errors import SmsError, SmsErrorKind
from idp.sms.fake import FakeSmsServer
from idp.sms.purposes import Purpose
from idp.sms.regions import Region
from idp.sms.senders import AliyunSender, TencentSender
from idp.sms.settings import SmsSettings, SmsTemplate
from idp.sms.signing import aliyun_signature, tc3_authorization
from tests.sms.conftest import ALIYUN_TEMPLATES, TENCENT_TEMPLATES, provider_config

PHONE = "+8613800138000"


def test_aliyun_signature_matches_the_published_sendsms_example__dysmsapi_rpc_v1() -> None:
    params = {
        "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123",
        "PhoneNumbers": "15300000001", "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}', "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert aliyun_signature("GET", params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_signature_matches_the_published_rpc_example__rpc_v1() -> None:
    params = {
        "Format": "XML", "AccessKeyId": "testid", "Action": "DescribeRegions",
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0", "Version": "2014-05-26", "Timestamp": "2016-02-23T12:46:24Z",
    }
    assert aliyun_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_tc3_signature_matches_the_published_example__tc3_hmac_sha256() -> None:
    payload = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    authorization = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "Gu5t9xGARNpq86cd98joQYCN3*******", "cvm",
        "cvm.tencentcloudapi.com", 1551113065, payload,
    )
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )


def sender(provider: str, fake: FakeSmsServer, **changes: object) -> AliyunSender | TencentSender:
    settings = replace(SmsSettings.from_config(provider_config(provider, fake.base_url)), **changes)
    return AliyunSender(settings) if provider == "aliyun" else TencentSender(settings)


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_a_code_is_delivered_with_the_purposes_template(
    provider: str, fake_sms: FakeSmsServer
) -> None:
    delivery = sender(provider, fake_sms).send(PHONE, Purpose.RESET, "123456", 5)

    [message] = fake_sms.control.messages(PHONE)
    templates = ALIYUN_TEMPLATES if provider == "aliyun" else TENCENT_TEMPLATES
    assert message["template"] == templates[Purpose.RESET]
    assert message["code"] == "123456" and message["params"] == ["123456"]
    assert message["sign_name"] == "示例网"
    assert delivery.message_id == message["message_id"] and delivery.provider == provider


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_a_wrong_secret_fails_as_the_real_service_fails(
    provider: str, fake_sms: FakeSmsServer
) -> None:
    with pytest.raises(SmsError) as refused:
        sender(provider, fake_sms, key_secret="not-the-secret").send(PHONE, Purpose.LOGIN, "1", 5)

    expected = "SignatureDoesNotMatch" if provider == "aliyun" else "AuthFailure.SignatureFailure"
    assert refused.value.code == expected
    assert refused.value.kind is SmsErrorKind.CREDENTIALS and refused.value.alert
    assert fake_sms.control.messages() == []


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_an_unknown_key_id_is_a_credentials_error(provider: str, fake_sms: FakeSmsServer) -> None:
    with pytest.raises(SmsError) as refused:
        sender(provider, fake_sms, key_id="unknown").send(PHONE, Purpose.LOGIN, "123456", 5)
    assert refused.value.kind is SmsErrorKind.CREDENTIALS


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_an_unapproved_template_is_a_template_error(provider: str, fake_sms: FakeSmsServer) -> None:
    settings = SmsSettings.from_config(provider_config(provider, fake_sms.base_url))
    templates = {**settings.templates,
                 (Purpose.LOGIN, Region.MAINLAND): SmsTemplate("SMS_999")}
    with pytest.raises(SmsError) as refused:
        sender(provider, fake_sms, templates=templates).send(PHONE, Purpose.LOGIN, "123456", 5)
    assert refused.value.kind is SmsErrorKind.TEMPLATE and refused.value.alert


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_a_number_that_is_no_mobile_is_refused_by_the_provider(
    provider: str, fake_sms: FakeSmsServer
) -> None:
    with pytest.raises(SmsError) as refused:
        sender(provider, fake_sms).send("+8601012345678", Purpose.LOGIN, "123456", 5)
    assert refused.value.kind is SmsErrorKind.INVALID_PHONE


ALIYUN_ERRORS = [
    ("isv.BUSINESS_LIMIT_CONTROL", SmsErrorKind.PHONE_LIMIT),
    ("isv.DAY_LIMIT_CONTROL", SmsErrorKind.PHONE_LIMIT),
    ("isv.MOBILE_NUMBER_ILLEGAL", SmsErrorKind.INVALID_PHONE),
    ("isv.AMOUNT_NOT_ENOUGH", SmsErrorKind.BALANCE),
    ("isv.OUT_OF_SERVICE", SmsErrorKind.BALANCE),
    ("isv.SMS_SIGNATURE_ILLEGAL", SmsErrorKind.TEMPLATE),
    ("isv.TEMPLATE_MISSING_PARAMETERS", SmsErrorKind.TEMPLATE),
    ("isp.SYSTEM_ERROR", SmsErrorKind.UNAVAILABLE),
    ("isv.SOMETHING_NEW", SmsErrorKind.PROVIDER_REFUSED),
]
TENCENT_ERRORS = [
    ("LimitExceeded.PhoneNumberThirtySecondLimit", SmsErrorKind.PHONE_LIMIT),
    ("LimitExceeded.PhoneNumberOneHourLimit", SmsErrorKind.PHONE_LIMIT),
    ("LimitExceeded.PhoneNumberDailyLimit", SmsErrorKind.PHONE_LIMIT),
    ("InvalidParameterValue.IncorrectPhoneNumber", SmsErrorKind.INVALID_PHONE),
    ("FailedOperation.InsufficientBalanceInSmsPackage", SmsErrorKind.BALANCE),
    ("FailedOperation.PhoneNumberInBlacklist", SmsErrorKind.INVALID_PHONE),
    ("FailedOperation.ContainSensitiveWord", SmsErrorKind.TEMPLATE),
    ("InternalError.Timeout", SmsErrorKind.UNAVAILABLE),
    ("RequestLimitExceeded", SmsErrorKind.UNAVAILABLE),
    ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", SmsErrorKind.PROVIDER_REFUSED),
]


@pytest.mark.parametrize(
    ("provider", "code", "kind"),
    [("aliyun", c, k) for c, k in ALIYUN_ERRORS] + [("tencent", c, k) for c, k in TENCENT_ERRORS],
)
def test_every_provider_error_maps_to_a_kind(
    provider: str, code: str, kind: SmsErrorKind, fake_sms: FakeSmsServer
) -> None:
    fake_sms.control.arm_failure(provider, code=code)
    with pytest.raises(SmsError) as refused:
        sender(provider, fake_sms).send(PHONE, Purpose.LOGIN, "123456", 5)
    assert (refused.value.code, refused.value.kind) == (code, kind)
    assert fake_sms.control.messages() == []


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
@pytest.mark.parametrize(
    ("failure", "code"),
    [({"delay": 1.5}, "timeout"), ({"garbage": True}, "garbage"), ({"status": 502}, "http_502")],
)
def test_no_answer_is_unavailable(
    provider: str, failure: dict[str, object], code: str, fake_sms: FakeSmsServer
) -> None:
    fake_sms.control.arm_failure(provider, **failure)
    with pytest.raises(SmsError) as refused:
        sender(provider, fake_sms, timeout_seconds=0.5).send(PHONE, Purpose.LOGIN, "123456", 5)
    assert refused.value.kind is SmsErrorKind.UNAVAILABLE and refused.value.code == code


def test_an_unreachable_provider_is_unavailable() -> None:
    from tests.production.conftest import closed_port

    settings = SmsSettings.from_config(
        provider_config("aliyun", f"http://127.0.0.1:{closed_port()}")
    )
    with pytest.raises(SmsError) as refused:
        AliyunSender(settings).send(PHONE, Purpose.LOGIN, "123456", 5)
    assert refused.value.code == "unreachable"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"IDP_SMS_PROVIDER": "twilio"}, "IDP_SMS_PROVIDER"),
        ({"IDP_SMS_TEMPLATE_RESET": ""}, "IDP_SMS_TEMPLATE_RESET"),
        ({"IDP_SMS_SIGN_NAME": ""}, "IDP_SMS_SIGN_NAME"),
        ({"IDP_SMS_KEY_SECRET": ""}, "IDP_SMS_KEY_SECRET"),
        ({"IDP_SMS_TIMEOUT": "soon"}, "IDP_SMS_TIMEOUT"),
    ],
)
def test_misconfiguration_names_the_setting(change: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        SmsSettings.from_config({**provider_config("aliyun", "http://x"), **change})


def test_tencent_needs_its_sdk_app_id() -> None:
    with pytest.raises(ConfigError, match="IDP_SMS_APP_ID"):
        SmsSettings.from_config({**provider_config("tencent", "http://x"), "IDP_SMS_APP_ID": ""})


def test_the_secret_can_come_from_a_file(tmp_path: object) -> None:
    from pathlib import Path

    secret_file = Path(str(tmp_path)) / "secret"
    secret_file.write_text("from-a-file\n")
    config = {**provider_config("aliyun", "http://x"), "IDP_SMS_KEY_SECRET": ""}
    config["IDP_SMS_KEY_SECRET_FILE"] = str(secret_file)
    settings = SmsSettings.from_config(config)
    assert settings.key_secret == "from-a-file"
    assert "from-a-file" not in repr(settings)
