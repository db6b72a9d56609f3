"""The fake answers like WeChat: content types, errcodes, rid suffixes, token rules, control API."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from idp.wechat.fake import FakeWeChatControl, FakeWeChatServer

from .conftest import MINI_APPID, MINI_SECRET, WEB_APPID


@pytest.fixture
def http(fake_wechat: FakeWeChatServer, control: FakeWeChatControl):
    with requests.Session() as session:

        def call(method: str, path: str, **kwargs: Any) -> requests.Response:
            return session.request(method, fake_wechat.base_url + path, timeout=5, **kwargs)

        yield call


def stable_token(http, force_refresh: bool = False) -> str:
    body = {
        "grant_type": "client_credential",
        "appid": MINI_APPID,
        "secret": MINI_SECRET,
        "force_refresh": force_refresh,
    }
    return http("POST", "/cgi-bin/stable_token", json=body).json()["access_token"]


def jscode2session(http, code: str, secret: str = MINI_SECRET) -> requests.Response:
    params = {
        "appid": MINI_APPID,
        "secret": secret,
        "js_code": code,
        "grant_type": "authorization_code",
    }
    return http("GET", "/sns/jscode2session", params=params)


def test_jscode2session_success_is_text_plain_without_errcode(http, control) -> None:
    response = jscode2session(http, control.issue_js_code(MINI_APPID).code)
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "errcode" not in response.json()


def test_phone_success_carries_errcode_zero(http, control) -> None:
    token = stable_token(http)
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    body = http(
        "POST", f"/wxa/business/getuserphonenumber?access_token={token}", json={"code": code}
    ).json()
    assert (body["errcode"], body["errmsg"]) == (0, "ok")


def test_errors_are_http_200_with_a_changing_rid(http) -> None:
    first, second = jscode2session(http, "nope"), jscode2session(http, "nope")
    assert first.status_code == second.status_code == 200
    assert first.json()["errcode"] == second.json()["errcode"] == 40029
    assert "rid:" in first.json()["errmsg"] and first.json()["errmsg"] != second.json()["errmsg"]


def test_form_body_on_getuserphonenumber_is_47001(http, control) -> None:
    token = stable_token(http)
    response = http(
        "POST", f"/wxa/business/getuserphonenumber?access_token={token}", data={"code": "c"}
    )
    assert response.json()["errcode"] == 47001


@pytest.mark.parametrize(("query", "errcode"), [("", 41001), ("?access_token=bogus", 40001)])
def test_getuserphonenumber_checks_the_access_token(http, query: str, errcode: int) -> None:
    response = http("POST", "/wxa/business/getuserphonenumber" + query, json={"code": "c"})
    assert response.json()["errcode"] == errcode


def test_forced_refresh_invalidates_the_previous_token(http, control) -> None:
    old = stable_token(http)
    assert stable_token(http) == old  # normal mode hands back the live token
    assert stable_token(http, force_refresh=True) != old
    response = http(
        "POST", f"/wxa/business/getuserphonenumber?access_token={old}", json={"code": "c"}
    )
    assert response.json()["errcode"] == 40001


def test_call_log_redacts_the_secret(http, control: FakeWeChatControl) -> None:
    jscode2session(http, "nope")
    stable_token(http)
    logged = [call["query"].get("secret") or call["body"]["secret"] for call in control.calls()]
    assert logged == ["REDACTED", "REDACTED"]


def test_reset_forgets_apps(http, control: FakeWeChatControl) -> None:
    control.reset()
    assert jscode2session(http, "nope").json()["errcode"] == 40013


def test_qrconnect_with_an_unknown_appid_shows_an_error_page(http) -> None:
    params = {
        "appid": "wxunknown",
        "redirect_uri": "https://rp.example/cb",
        "response_type": "code",
        "scope": "snsapi_login",
    }
    response = http("GET", "/connect/qrconnect", params=params, allow_redirects=False)
    assert response.status_code == 400 and "Location" not in response.headers


def test_control_api_rejects_bad_input(http) -> None:
    response = http("POST", "/__fake__/js_codes", json={"appid": WEB_APPID + "x"})
    assert response.status_code == 400 and "error" in response.json()
    assert http("POST", "/__fake__/failures", json={"times": 1}).status_code == 400
