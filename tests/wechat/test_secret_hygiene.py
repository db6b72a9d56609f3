"""No secret, session_key, code or token in any log line or exception message."""

from __future__ import annotations

import logging

import pytest

from idp.wechat.client import WeChatClient
from idp.wechat.errors import UpstreamUnavailable, WeChatError
from idp.wechat.fake import FakeWeChatControl, FakeWeChatServer

from .conftest import MINI_APPID, MINI_SECRET, WEB_SECRET
from .test_qr_login import scan_qr


def exercise_every_call(
    fake_wechat: FakeWeChatServer,
    control: FakeWeChatControl,
    client: WeChatClient,
    web_client: WeChatClient,
    errors: list[WeChatError],
) -> set[str]:
    """Runs successes and failures of every API; returns the sensitive values that went by."""
    issued = control.issue_js_code(MINI_APPID, user="frank")
    client.code_to_session(issued.code)
    for attempt in ({"errcode": 40163}, {"html": True}, {"status": 502}):
        control.arm_failure("/sns/jscode2session", **attempt)
        try:
            client.code_to_session(issued.code)
        except WeChatError as error:
            errors.append(error)
    phone_code = control.issue_phone_code(MINI_APPID, "13800138000")
    control.arm_failure("/wxa/business/getuserphonenumber", errcode=40001)
    client.get_phone_number(phone_code)
    app_token = client.access_token()
    web_token = web_client.oauth2_access_token(scan_qr(fake_wechat)["code"][0])
    web_client.userinfo(web_token.access_token, web_token.openid)
    return {
        MINI_SECRET,
        WEB_SECRET,
        issued.code,
        issued.session_key,
        phone_code,
        app_token,
        web_token.access_token,
        web_token.refresh_token,
    }


def test_no_sensitive_value_in_logs_or_exception_messages(
    fake_wechat: FakeWeChatServer,
    control: FakeWeChatControl,
    client: WeChatClient,
    web_client: WeChatClient,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Every logger at DEBUG (an HTTP library may log whole URLs there), and the process's own
    # stdout and stderr, where libcurl would write if it were verbose.
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    errors: list[WeChatError] = []
    sensitive = exercise_every_call(fake_wechat, control, client, web_client, errors)
    formatter = logging.Formatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any("/sns/jscode2session" in line for line in lines)  # logging did happen
    output = capfd.readouterr()
    texts = [*lines, output.out, output.err]
    texts += [f"{error} {error!r} {error.args}" for error in errors]
    assert len(errors) == 3
    for value in sensitive:
        assert not [text for text in texts if value in text]


def test_secret_echoed_in_errmsg_is_redacted(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    body = f'{{"errcode": 40125, "errmsg": "invalid appsecret {MINI_SECRET}, rid: 1"}}'
    control.arm_failure("/sns/jscode2session", body=body)
    with pytest.raises(WeChatError) as caught:
        client.code_to_session("a-code")
    assert MINI_SECRET not in str(caught.value) and caught.value.errcode == 40125


def test_transport_errors_do_not_chain_the_url_with_its_secret(
    make_client, control: FakeWeChatControl
) -> None:
    control.arm_failure("/sns/jscode2session", delay=1.0)
    with pytest.raises(UpstreamUnavailable) as caught:
        make_client(timeout=(1.0, 0.2)).code_to_session("a-code")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
