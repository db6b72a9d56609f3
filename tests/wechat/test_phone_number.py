"""Phone binding: POST /wxa/business/getuserphonenumber (WECHAT.md, "Phone number")."""

from __future__ import annotations

import pytest

from idp.wechat.client import WeChatClient
from idp.wechat.errors import InvalidCode, WatermarkMismatch
from idp.wechat.fake import FakeWeChatControl

from .conftest import MINI_APPID


def test_phone_number_is_normalised_to_e164(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    phone = client.get_phone_number(control.issue_phone_code(MINI_APPID, "13800138000"))
    assert phone.phone_number_e164 == "+8613800138000"
    assert (phone.pure_phone_number, phone.country_code) == ("13800138000", "86")
    assert phone.watermark_appid == MINI_APPID and phone.watermark_timestamp > 0


def test_country_code_sent_as_a_number_is_accepted(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    code = control.issue_phone_code(MINI_APPID, "13800138000", country_code_as_number=True)
    phone = client.get_phone_number(code)
    assert (phone.phone_number_e164, phone.country_code) == ("+8613800138000", "86")


def test_foreign_number_keeps_its_country_code(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    code = control.issue_phone_code(MINI_APPID, "2025550123", country_code="1")
    assert client.get_phone_number(code).phone_number_e164 == "+12025550123"


def test_watermark_of_another_appid_is_rejected(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    code = control.issue_phone_code(MINI_APPID, "13800138000", watermark_appid="wxsomeoneelse")
    with pytest.raises(WatermarkMismatch):
        client.get_phone_number(code)


def test_phone_code_is_single_use(client: WeChatClient, control: FakeWeChatControl) -> None:
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    client.get_phone_number(code)
    with pytest.raises(InvalidCode):
        client.get_phone_number(code)


def test_phone_code_expires_after_five_minutes(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    control.advance_clock(301)
    with pytest.raises(InvalidCode):
        client.get_phone_number(code)


def test_phone_request_sends_the_code_as_a_json_body(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    client.get_phone_number(code)
    (call,) = control.calls("/wxa/business/getuserphonenumber")
    assert call["body"] == {"code": code} and call["query"]["access_token"]
