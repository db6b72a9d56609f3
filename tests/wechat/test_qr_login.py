"""Website QR login: /connect/qrconnect → /sns/oauth2/access_token → /sns/userinfo."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.wechat.client import WeChatClient
from idp.wechat.errors import CodeAlreadyUsed, InvalidAccessToken, InvalidCode
from idp.wechat.fake import FakeWeChatControl, FakeWeChatServer

from .conftest import MINI_APPID, WEB_APPID

REDIRECT_URI = "https://rp.example/login/wechat/callback"


def scan_qr(fake_wechat: FakeWeChatServer, state: str = "xyz") -> dict[str, list[str]]:
    params = {
        "appid": WEB_APPID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "snsapi_login",
        "state": state,
    }
    response = requests.get(
        fake_wechat.base_url + "/connect/qrconnect",
        params=params,
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    return parse_qs(location.query)


def test_qr_login_redirects_then_code_gives_token_then_userinfo(
    fake_wechat: FakeWeChatServer, control: FakeWeChatControl, web_client: WeChatClient
) -> None:
    identity = control.next_qr_user(
        WEB_APPID, user="dave", nickname="大卫", headimgurl="https://x/a"
    )
    query = scan_qr(fake_wechat)
    assert query["state"] == ["xyz"]
    token = web_client.oauth2_access_token(query["code"][0])
    assert (token.openid, token.unionid, token.scope) == (
        identity.openid,
        identity.unionid,
        "snsapi_login",
    )
    assert token.is_snapshotuser is False and token.expires_in == 7200
    profile = web_client.userinfo(token.access_token, token.openid)
    # text/plain UTF-8 must not turn into mojibake.
    assert (profile.nickname, profile.headimgurl, profile.unionid) == (
        "大卫",
        "https://x/a",
        identity.unionid,
    )


def test_refusal_redirects_with_state_only(
    fake_wechat: FakeWeChatServer, control: FakeWeChatControl
) -> None:
    control.next_qr_refusal(WEB_APPID)
    assert scan_qr(fake_wechat, state="s1") == {"state": ["s1"]}


def test_snapshot_user_is_flagged(
    fake_wechat: FakeWeChatServer, control: FakeWeChatControl, web_client: WeChatClient
) -> None:
    control.next_qr_user(WEB_APPID, user="ghost", is_snapshotuser=True)
    token = web_client.oauth2_access_token(scan_qr(fake_wechat)["code"][0])
    assert token.is_snapshotuser is True


def test_qr_code_is_single_use(
    fake_wechat: FakeWeChatServer, control: FakeWeChatControl, web_client: WeChatClient
) -> None:
    code = scan_qr(fake_wechat)["code"][0]
    web_client.oauth2_access_token(code)
    with pytest.raises(CodeAlreadyUsed):
        web_client.oauth2_access_token(code)


def test_qr_code_expires_after_ten_minutes(
    fake_wechat: FakeWeChatServer, control: FakeWeChatControl, web_client: WeChatClient
) -> None:
    code = scan_qr(fake_wechat)["code"][0]
    control.advance_clock(601)
    with pytest.raises(InvalidCode):
        web_client.oauth2_access_token(code)


def test_userinfo_with_an_unknown_token_is_invalid_access_token(
    control: FakeWeChatControl, web_client: WeChatClient
) -> None:
    with pytest.raises(InvalidAccessToken):
        web_client.userinfo("not-a-token", "o-someone")


def test_same_user_has_one_unionid_but_an_openid_per_app(
    fake_wechat: FakeWeChatServer,
    control: FakeWeChatControl,
    client: WeChatClient,
    web_client: WeChatClient,
) -> None:
    control.next_qr_user(WEB_APPID, user="erin")
    web = web_client.oauth2_access_token(scan_qr(fake_wechat)["code"][0])
    mini = client.code_to_session(control.issue_js_code(MINI_APPID, user="erin").code)
    assert web.unionid == mini.unionid and web.openid != mini.openid
