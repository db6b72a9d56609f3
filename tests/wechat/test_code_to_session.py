"""Mini-program login: GET /sns/jscode2session (WECHAT.md, "Mini-program login")."""

from __future__ import annotations

import pytest

from idp.wechat.client import WeChatClient
from idp.wechat.errors import AppMisconfigured, CodeAlreadyUsed, InvalidCode
from idp.wechat.fake import FakeWeChatControl

from .conftest import MINI_APPID, MINI_SECRET


def test_success_without_errcode_returns_openid_unionid_and_session_key(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    session = client.code_to_session(issued.code)
    assert (session.openid, session.unionid) == (issued.openid, issued.unionid)
    assert session.session_key == issued.session_key
    assert issued.session_key not in repr(session)


def test_unionid_is_none_when_the_app_is_not_bound_to_open_platform(
    make_client, control: FakeWeChatControl
) -> None:
    control.register_app("wx3333333333333333", "unbound-secret", unionid_bound=False)
    client = make_client("wx3333333333333333", "unbound-secret")
    session = client.code_to_session(control.issue_js_code("wx3333333333333333", user="bob").code)
    assert session.unionid is None


def test_js_code_is_single_use__second_use_is_code_already_used(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    code = control.issue_js_code(MINI_APPID, user="alice").code
    client.code_to_session(code)
    with pytest.raises(CodeAlreadyUsed):
        client.code_to_session(code)


def test_unknown_js_code_is_invalid_code(client: WeChatClient) -> None:
    with pytest.raises(InvalidCode):
        client.code_to_session("never-issued")


def test_js_code_expires_after_five_minutes(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    code = control.issue_js_code(MINI_APPID, user="alice").code
    control.advance_clock(301)
    with pytest.raises(InvalidCode):
        client.code_to_session(code)


def test_wrong_secret_is_app_misconfigured_40125(make_client, control) -> None:
    client = make_client(MINI_APPID, "not-the-secret")
    with pytest.raises(AppMisconfigured) as caught:
        client.code_to_session(control.issue_js_code(MINI_APPID).code)
    assert caught.value.errcode == 40125


def test_unknown_appid_is_app_misconfigured_40013(make_client, control) -> None:
    client = make_client("wx0000000000000000", MINI_SECRET)
    with pytest.raises(AppMisconfigured) as caught:
        client.code_to_session(control.issue_js_code(MINI_APPID).code)
    assert caught.value.errcode == 40013


def test_openid_is_stable_for_one_user_and_one_app(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    first = client.code_to_session(control.issue_js_code(MINI_APPID, user="carol").code)
    second = client.code_to_session(control.issue_js_code(MINI_APPID, user="carol").code)
    assert first.openid == second.openid and first.session_key != second.session_key
