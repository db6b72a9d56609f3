"""A template per purpose and region, and exactly the variables each template declares (issue 23
items 9 and 10), against the fake providers over real HTTP. The fakes refuse what the real
services refuse: a mainland template for a Hong Kong or Macau number, an international one for a
mainland number, and parameters that do not match the approved template."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from idp.errors import ConfigError
from idp.sms.errors import SmsError, SmsErrorKind
from idp.sms.fake import FakeSmsServer
from idp.sms.purposes import Purpose
from idp.sms.regions import Region, region_of
from idp.sms.senders import AliyunSender, TencentSender
from idp.sms.settings import SmsSettings, SmsTemplate
from tests.sms.conftest import (
    ALIYUN_INTL_TEMPLATES,
    ALIYUN_TEMPLATES,
    TENCENT_INTL_TEMPLATES,
    TENCENT_TEMPLATES,
    provider_config,
)

MAINLAND = "+8613800138000"
HONG_KONG = "+85261234567"
MACAU = "+85366123456"
PROVIDERS = ["aliyun", "tencent"]
# What each service answers for a template of the other region (Alibaba Cloud documents no code
# of its own for a mainland template and a +852 number: it is not a number that template takes).
MAINLAND_TEMPLATE_ABROAD = {
    "aliyun": "isv.MOBILE_NUMBER_ILLEGAL",
    "tencent": "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone",
}
INTERNATIONAL_TEMPLATE_AT_HOME = {
    "aliyun": "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
    "tencent": "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone",
}


def settings_for(provider: str, fake: FakeSmsServer, **overrides: Any) -> SmsSettings:
    return SmsSettings.from_config({**provider_config(provider, fake.base_url), **overrides})


def sender(settings: SmsSettings) -> AliyunSender | TencentSender:
    return AliyunSender(settings) if settings.provider == "aliyun" else TencentSender(settings)


def test_a_number_s_region_is_its_country_code() -> None:
    assert region_of(MAINLAND) is Region.MAINLAND
    assert {region_of(n) for n in (HONG_KONG, MACAU, "+886912345678", "+14155550123")} == {
        Region.INTERNATIONAL
    }


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("phone", [HONG_KONG, MACAU])
def test_hong_kong_and_macau_get_the_international_template__issue23_9(
    provider: str, phone: str, fake_sms: FakeSmsServer
) -> None:
    sender(settings_for(provider, fake_sms)).send(phone, Purpose.LOGIN, "123456", 5)

    [message] = fake_sms.control.messages(phone)
    international = ALIYUN_INTL_TEMPLATES if provider == "aliyun" else TENCENT_INTL_TEMPLATES
    assert message["template"] == international[Purpose.LOGIN]
    assert message["code"] == "123456"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_mainland_number_keeps_the_mainland_template(
    provider: str, fake_sms: FakeSmsServer
) -> None:
    sender(settings_for(provider, fake_sms)).send(MAINLAND, Purpose.REGISTER, "654321", 5)

    [message] = fake_sms.control.messages(MAINLAND)
    mainland = ALIYUN_TEMPLATES if provider == "aliyun" else TENCENT_TEMPLATES
    assert message["template"] == mainland[Purpose.REGISTER]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_fake_refuses_a_mainland_template_for_hong_kong_as_the_provider_does(
    provider: str, fake_sms: FakeSmsServer
) -> None:
    """What one template per purpose did to every +852/+853 number."""
    settings = settings_for(provider, fake_sms)
    one_template = {**settings.templates, (Purpose.LOGIN, Region.INTERNATIONAL):
                    settings.templates[(Purpose.LOGIN, Region.MAINLAND)]}

    with pytest.raises(SmsError) as refused:
        sender(replace(settings, templates=one_template)).send(
            HONG_KONG, Purpose.LOGIN, "123456", 5)

    assert refused.value.code == MAINLAND_TEMPLATE_ABROAD[provider]
    assert fake_sms.control.messages() == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_fake_refuses_an_international_template_for_a_mainland_number(
    provider: str, fake_sms: FakeSmsServer
) -> None:
    settings = settings_for(provider, fake_sms)
    swapped = {**settings.templates, (Purpose.LOGIN, Region.MAINLAND):
               settings.templates[(Purpose.LOGIN, Region.INTERNATIONAL)]}

    with pytest.raises(SmsError) as refused:
        sender(replace(settings, templates=swapped)).send(MAINLAND, Purpose.LOGIN, "123456", 5)

    assert refused.value.code == INTERNATIONAL_TEMPLATE_AT_HOME[provider]
    assert refused.value.kind is SmsErrorKind.TEMPLATE and refused.value.alert


def test_allowing_hong_kong_and_macau_needs_international_templates(
    fake_sms: FakeSmsServer
) -> None:
    config = {k: v for k, v in provider_config("aliyun", fake_sms.base_url).items()
              if not k.endswith("_INTL")}
    SmsSettings.from_config(config)  # mainland only (the default 86): none needed

    with pytest.raises(ConfigError, match="IDP_SMS_TEMPLATE_LOGIN_INTL"):
        SmsSettings.from_config({**config, "IDP_SMS_ALLOWED_COUNTRY_CODES": "86,852,853"})


# --- variables (issue 23 item 10) -------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_by_default_only_the_code_is_sent__one_variable_per_verification_template(
    provider: str, fake_sms: FakeSmsServer
) -> None:
    """Alibaba Cloud's verification-code (验证码) templates take one variable; the fake holds
    the templates with `code` alone and checks the parameters against it."""
    settings = settings_for(provider, fake_sms)
    assert {t.variables for t in settings.templates.values()} == {("code",)}

    sender(settings).send(MAINLAND, Purpose.LOGIN, "123456", 5)

    [message] = fake_sms.control.messages(MAINLAND)
    assert message["params"] == ["123456"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_configured_variables_are_exactly_what_is_sent(
    provider: str, fake_sms: FakeSmsServer
) -> None:
    """A template approved with the code and the minutes (Tencent allows `{1}`…`{2}`):
    declared `ID:code,minutes`, sent in that order."""
    template_id = "SMS_300001" if provider == "aliyun" else "400001"
    fake_sms.control.add_account(
        provider, *_key(provider), sign_names=["示例网"], app_id="1400000001",
        templates=[{"id": template_id, "variables": ["code", "minutes"]}],
    )
    settings = settings_for(provider, fake_sms,
                            IDP_SMS_TEMPLATE_LOGIN=f"{template_id}:code,minutes")
    assert settings.templates[(Purpose.LOGIN, Region.MAINLAND)] == SmsTemplate(
        template_id, ("code", "minutes"))

    sender(settings).send(MAINLAND, Purpose.LOGIN, "123456", 5)

    [message] = fake_sms.control.messages(MAINLAND)
    assert message["params"] == ["123456", "5"]


TOO_MANY = {
    "aliyun": "isv.SMS_TEMPLATE_ILLEGAL",
    "tencent": "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
}
TOO_FEW = {
    "aliyun": "isv.TEMPLATE_MISSING_PARAMETERS",
    "tencent": "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_variables_the_template_does_not_declare_are_refused__as_before(
    provider: str, fake_sms: FakeSmsServer
) -> None:
    """The IdP used to send the code and the minutes to every template: a one-variable
    template refuses that."""
    settings = settings_for(provider, fake_sms,
                            IDP_SMS_TEMPLATE_LOGIN=_mainland(provider) + ":code,minutes")
    with pytest.raises(SmsError) as refused:
        sender(settings).send(MAINLAND, Purpose.LOGIN, "123456", 5)
    assert refused.value.code == TOO_MANY[provider]
    assert refused.value.kind is SmsErrorKind.TEMPLATE


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_variables_are_refused(provider: str, fake_sms: FakeSmsServer) -> None:
    template_id = "SMS_300002" if provider == "aliyun" else "400002"
    fake_sms.control.add_account(
        provider, *_key(provider), sign_names=["示例网"], app_id="1400000001",
        templates=[{"id": template_id, "variables": ["code", "minutes"]}],
    )
    settings = settings_for(provider, fake_sms, IDP_SMS_TEMPLATE_LOGIN=template_id)
    with pytest.raises(SmsError) as refused:
        sender(settings).send(MAINLAND, Purpose.LOGIN, "123456", 5)
    assert refused.value.code == TOO_FEW[provider]


@pytest.mark.parametrize("value", ["SMS_1:minutes", "SMS_1:code,code", "SMS_1:code,name", ":code"])
def test_a_template_s_variables_are_checked_at_start(value: str, fake_sms: FakeSmsServer) -> None:
    with pytest.raises(ConfigError, match="IDP_SMS_TEMPLATE_RESET"):
        settings_for("aliyun", fake_sms, IDP_SMS_TEMPLATE_RESET=value)


def _key(provider: str) -> tuple[str, str]:
    from tests.sms.conftest import ALIYUN_KEY, TENCENT_KEY

    return ALIYUN_KEY if provider == "aliyun" else TENCENT_KEY


def _mainland(provider: str) -> str:
    return (ALIYUN_TEMPLATES if provider == "aliyun" else TENCENT_TEMPLATES)[Purpose.LOGIN]
