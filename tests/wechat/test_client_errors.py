"""Every WeChat errcode and every unusable answer becomes the right WeChatError subclass."""

from __future__ import annotations

import socket

import pytest

from idp.wechat.client import WeChatClient
from idp.wechat.errors import (
    AppMisconfigured,
    CodeAlreadyUsed,
    HighRiskUser,
    InvalidAccessToken,
    InvalidCode,
    InvalidRefreshToken,
    InvalidUpstreamData,
    RateLimited,
    SystemBusy,
    UpstreamUnavailable,
    WeChatError,
)
from idp.wechat.fake import FakeWeChatControl
from idp.wechat.token_store import MemoryAccessTokenStore

from .conftest import MINI_APPID, MINI_SECRET

JSCODE2SESSION = "/sns/jscode2session"
MAPPED_ERRCODES = [
    (40029, InvalidCode),
    (40163, CodeAlreadyUsed),
    (45011, RateLimited),
    (40226, HighRiskUser),
    (-1, SystemBusy),
    (40001, InvalidAccessToken),
    (40014, InvalidAccessToken),
    (42001, InvalidAccessToken),
    (40013, AppMisconfigured),
    (40125, AppMisconfigured),
    (40164, AppMisconfigured),
    (40030, InvalidRefreshToken),
    (42002, InvalidRefreshToken),
]


@pytest.mark.parametrize(("errcode", "error_class"), MAPPED_ERRCODES)
def test_http_200_errcode_raises_its_exception_class(
    client: WeChatClient, control: FakeWeChatControl, errcode: int, error_class: type[WeChatError]
) -> None:
    control.arm_failure(JSCODE2SESSION, errcode=errcode)
    with pytest.raises(error_class) as caught:
        client.code_to_session("some-code")
    assert caught.value.errcode == errcode
    assert "rid:" in caught.value.errmsg  # the changing suffix is carried, never matched on


def test_unmapped_errcode_47001_is_a_plain_wechat_error(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    control.arm_failure(JSCODE2SESSION, errcode=47001)
    with pytest.raises(WeChatError) as caught:
        client.code_to_session("some-code")
    assert type(caught.value) is WeChatError and caught.value.errcode == 47001


def test_busy_and_rate_limit_are_temporary_but_a_bad_code_is_not() -> None:
    assert SystemBusy.temporary and RateLimited.temporary and UpstreamUnavailable.temporary
    assert not InvalidCode.temporary and not CodeAlreadyUsed.temporary


UNUSABLE_ANSWERS = {
    "html_page": {"html": True},
    "truncated_json": {"truncated": True},
    "http_502": {"status": 502},
    "http_500": {"status": 500},
    "empty_text_html": {"body": "", "content_type": "text/html"},
    "json_array": {"body": "[]"},
    "errcode_as_string": {"body": '{"errcode": "40029", "errmsg": "x"}'},
    "openid_as_number": {"body": '{"openid": 7, "session_key": "a2V5"}'},
    "session_key_missing": {"body": '{"openid": "o123"}'},
}


@pytest.mark.parametrize("failure", UNUSABLE_ANSWERS.values(), ids=UNUSABLE_ANSWERS.keys())
def test_unusable_answer_is_upstream_unavailable(
    client: WeChatClient, control: FakeWeChatControl, failure: dict
) -> None:
    control.arm_failure(JSCODE2SESSION, **failure)
    with pytest.raises(UpstreamUnavailable) as caught:
        client.code_to_session("some-code")
    assert caught.value.errcode is None


def test_read_timeout_is_upstream_unavailable_and_the_js_code_is_not_retried(
    make_client, control: FakeWeChatControl
) -> None:
    code = control.issue_js_code(MINI_APPID, user="alice").code
    control.arm_failure(JSCODE2SESSION, delay=1.0)
    client = make_client(timeout=(1.0, 0.2))
    with pytest.raises(UpstreamUnavailable):
        client.code_to_session(code)
    assert len(control.calls(JSCODE2SESSION)) == 1


def test_connection_refused_is_upstream_unavailable() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = WeChatClient(
        f"http://127.0.0.1:{port}", MINI_APPID, MINI_SECRET, MemoryAccessTokenStore(), (0.5, 0.5)
    )
    with pytest.raises(UpstreamUnavailable):
        client.code_to_session("some-code")
    client.close()


def test_on_call_hook_counts_calls_by_errcode(make_client, control: FakeWeChatControl) -> None:
    seen: list[tuple[str, int | None]] = []
    client = make_client(on_call=lambda path, errcode, seconds: seen.append((path, errcode)))
    code = control.issue_js_code(MINI_APPID, user="alice").code
    client.code_to_session(code)
    with pytest.raises(CodeAlreadyUsed):
        client.code_to_session(code)
    control.arm_failure(JSCODE2SESSION, html=True)
    with pytest.raises(UpstreamUnavailable):
        client.code_to_session(code)
    assert seen == [(JSCODE2SESSION, 0), (JSCODE2SESSION, 40163), (JSCODE2SESSION, None)]


@pytest.mark.parametrize(
    "body",
    [
        '{"openid": "o1\\u0000", "session_key": "a2V5"}',
        '{"openid": "o1", "session_key": "a2V5", "unionid": "u\\u0000"}',
    ],
)
def test_a_nul_in_an_id_from_wechat_is_invalid_upstream_data(
    client: WeChatClient, control: FakeWeChatControl, body: str
) -> None:
    """An id PostgreSQL cannot store, and not the id WeChat means: refused, not retried."""
    control.arm_failure(JSCODE2SESSION, body=body)
    with pytest.raises(InvalidUpstreamData) as caught:
        client.code_to_session("some-code")
    assert not caught.value.temporary
