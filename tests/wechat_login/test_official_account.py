"""Sign-in inside WeChat's browser through an Official Account (网页授权), against the fake WeChat
over loopback: snsapi_base for a returning user, snsapi_userinfo (with WeChat's consent page) for a
new one, codes single-use, snapshot users never get an account, and the optional automatic start.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.claims import profile_values
from idp.identity.models import Account, Identity, IdentityKind, LoginSession
from idp.wechat.apps import create_wechat_app
from idp.wechat.fake import FakeWeChatControl
from tests.conftest import csrf_token

from .conftest import bind_phone, mini_login

OA_APPID = "wxc000000000000001"
OA_SECRET = "oa-secret-00112233445566778899aa"
WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
IN_WECHAT = {"User-Agent": WECHAT_UA}
AVATAR = "https://thirdwx.qlogo.cn/mmopen/oa/132"


@pytest.fixture
def official_account(control: FakeWeChatControl, wechat_apps: None) -> str:
    control.register_app(OA_APPID, OA_SECRET, kind="officialaccount")
    create_wechat_app("officialaccount", OA_APPID, OA_SECRET, name="公众号")
    return OA_APPID


def accounts() -> list[Account]:
    return list(db.session.scalars(sa.select(Account)))


def session_of(browser: FlaskClient) -> LoginSession | None:
    with browser.session_transaction() as session:
        sid = session.get("idp_sid")
    row = db.session.get(LoginSession, sid) if sid else None
    return row if row is not None and row.ended_at is None else None


class WeChatBrowser:
    """The IdP through the Flask test client, WeChat's pages through real HTTP to the fake; every
    request carries WeChat's User-Agent. Records the scopes WeChat was asked for."""

    def __init__(self, browser: FlaskClient) -> None:
        self.browser = browser
        self.scopes: list[str] = []
        self.consent_pages = 0

    def get(self, url: str) -> Any:
        """Follows redirects, through the fake and back, until a page of the IdP answers."""
        response = self.browser.get(url, headers=IN_WECHAT)
        for _ in range(10):
            location = response.headers.get("Location", "")
            if response.status_code == 302 and location.startswith("/login/wechat/oa?"):
                response = self.browser.get(location, headers=IN_WECHAT)  # the second round
                continue
            if response.status_code != 302 or not location.startswith("http"):
                return response
            response = self.browser.get(self._through_wechat(location), headers=IN_WECHAT)
        raise AssertionError("redirect loop")

    def _through_wechat(self, url: str) -> str:
        parts = urlsplit(url)
        assert parts.fragment == "wechat_redirect" and parts.path == "/connect/oauth2/authorize"
        self.scopes.append(parse_qs(parts.query)["scope"][0])
        answer = requests.get(url, headers=IN_WECHAT, allow_redirects=False, timeout=5)
        if answer.status_code == 200 and "允许" in answer.text:  # WeChat's consent page
            self.consent_pages += 1
            ticket = re.search(r'name="ticket" value="([^"]+)"', answer.text)
            assert ticket
            answer = requests.post(
                urlsplit(url)._replace(path="/connect/oauth2/authorize/consent", query="").geturl(),
                data={"ticket": ticket.group(1), "decision": "allow"},
                headers=IN_WECHAT,
                allow_redirects=False,
                timeout=5,
            )
        assert answer.status_code == 302, answer.text[:300]
        callback = urlsplit(answer.headers["Location"])
        assert callback.path == "/login/wechat/oa/callback"
        return f"{callback.path}?{callback.query}"


def test_login_page_inside_wechat_offers_the_official_account(
    client: FlaskClient, official_account: str
) -> None:
    inside = client.get("/login?next=/account", headers=IN_WECHAT).get_data(as_text=True)
    assert "/login/wechat/oa?next=/account" in inside
    outside = client.get("/login?next=/account").get_data(as_text=True)
    assert "/login/wechat?next=/account" in outside and "/login/wechat/oa" not in outside


def test_start_sends_to_wechat_authorize_with_snsapi_base__wechat_oauth2_step1(
    client: FlaskClient, official_account: str, fake_wechat: Any
) -> None:
    location = client.get("/login/wechat/oa", headers=IN_WECHAT).headers["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        fake_wechat.base_url + "/connect/oauth2/authorize"
    )
    assert parts.fragment == "wechat_redirect"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert list(query) == ["appid", "redirect_uri", "response_type", "scope", "state"]
    assert query["appid"] == OA_APPID and query["scope"] == "snsapi_base"
    assert query["redirect_uri"] == "http://127.0.0.1:5000/login/wechat/oa/callback"


def test_mini_program_user_signs_in_silently_by_unionid(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, official_account: str
) -> None:
    mini_login(client, control, mini_client, "alice")
    (account,) = accounts()
    control.set_browser_user(OA_APPID, user="alice", nickname="Alice")
    browser = WeChatBrowser(client.application.test_client())
    response = browser.get("/login/wechat/oa?next=/account")
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert browser.scopes == ["snsapi_base"] and browser.consent_pages == 0
    assert control.calls("/sns/userinfo") == []  # silent: no profile asked for
    assert accounts() == [account]  # one person, one account (rule: same unionid)
    row = session_of(browser.browser)
    assert row is not None and row.account_id == account.id
    assert (row.amr, row.channel) == ("wechat", "officialaccount")
    oa_openid = db.session.scalars(
        sa.select(Identity).where(
            Identity.kind == IdentityKind.WECHAT_OPENID, Identity.namespace == OA_APPID
        )
    ).one()
    assert oa_openid.account_id == account.id


def test_new_user_is_asked_with_snsapi_userinfo_then_creates_an_account(
    client: FlaskClient, control: FakeWeChatControl, official_account: str
) -> None:
    identity = control.set_browser_user(
        OA_APPID, user="olivia", nickname="奥利维亚", headimgurl=AVATAR
    )
    browser = WeChatBrowser(client)
    choice = browser.get("/login/wechat/oa?next=/account")
    assert browser.scopes == ["snsapi_base", "snsapi_userinfo"]
    assert browser.consent_pages == 1
    assert choice.headers["Location"].endswith("/login/wechat/choose")
    assert accounts() == []  # nothing before the user chooses
    page = client.get("/login/wechat/choose", headers=IN_WECHAT).get_data(as_text=True)
    assert "奥利维亚" in page
    created = client.post("/login/wechat/create", data={"csrf_token": csrf_token(page)})
    assert created.status_code == 302 and created.headers["Location"] == "/account"
    (account,) = accounts()
    assert account.created_via == "officialaccount"
    ids = {(i.kind, i.namespace, i.value) for i in account.identities}
    assert ("wechat_openid", OA_APPID, identity.openid) in ids
    assert ("wechat_unionid", "", identity.unionid) in ids
    assert profile_values(account)["nickname"] == ("奥利维亚", "wechat")
    assert profile_values(account)["picture"] == (AVATAR, "wechat")
    assert session_of(client).channel == "officialaccount"

    # Next time: silent, and WeChat does not ask again.
    again = WeChatBrowser(client.application.test_client())
    assert again.get("/login/wechat/oa").status_code == 302
    assert again.scopes == ["snsapi_base"] and session_of(again.browser).account_id == account.id
    # …and the silent round, which brings no profile, leaves the one WeChat gave.
    db.session.expire_all()
    assert profile_values(db.session.get(Account, account.id))["nickname"] == ("奥利维亚", "wechat")


def test_a_later_verified_phone_merges_the_official_account_user_as_today(
    client: FlaskClient,
    control: FakeWeChatControl,
    mini_client: Any,
    official_account: str,
    make_user: Any,
) -> None:
    """Created inside WeChat, then the same person (unionid) opens the mini-program and shares
    the phone their website account verified: one account, by the rules of the engine."""
    website_account = make_user(phone="+8613800138000", name="Web Olivia")
    control.set_browser_user(OA_APPID, user="olivia", nickname="奥利维亚")
    browser = WeChatBrowser(client)
    browser.get("/login/wechat/oa")
    page = client.get("/login/wechat/choose", headers=IN_WECHAT).get_data(as_text=True)
    client.post("/login/wechat/create", data={"csrf_token": csrf_token(page)})
    assert len(accounts()) == 2

    tokens = mini_login(client.application.test_client(), control, mini_client, "olivia")
    assert len(accounts()) == 2  # the mini-program found the Official Account's account
    code = control.issue_phone_code(mini_client.wechat_appid, "13800138000")
    bound = bind_phone(client.application.test_client(), tokens["access_token"], {"code": code})
    assert bound.status_code == 200 and bound.get_json()["merged"] is True
    assert bound.get_json()["sub"] == website_account.id  # the older account survives
    survivor = db.session.get(Account, website_account.id)
    namespaces = {i.namespace for i in survivor.identities if i.kind == IdentityKind.WECHAT_OPENID}
    assert namespaces == {OA_APPID, mini_client.wechat_appid}


def test_snapshot_user_never_gets_an_account(
    client: FlaskClient, control: FakeWeChatControl, official_account: str
) -> None:
    control.set_browser_user(OA_APPID, user="ghost", is_snapshotuser=True)
    browser = WeChatBrowser(client)
    page = browser.get("/login/wechat/oa")
    assert page.status_code == 200
    assert 'data-kind="snapshot"' in page.get_data(as_text=True)
    assert accounts() == [] and session_of(client) is None


def _callback_with_a_fresh_code(client: FlaskClient) -> tuple[str, str]:
    """Runs the start and WeChat's redirect, and returns the callback URL (not yet visited)."""
    location = client.get("/login/wechat/oa", headers=IN_WECHAT).headers["Location"]
    answer = requests.get(location, headers=IN_WECHAT, allow_redirects=False, timeout=5)
    callback = urlsplit(answer.headers["Location"])
    return f"{callback.path}?{callback.query}", parse_qs(callback.query)["state"][0]


def test_a_used_code_is_refused__wechat_40163(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, official_account: str
) -> None:
    mini_login(client, control, mini_client, "alice")
    control.set_browser_user(OA_APPID, user="alice")
    callback, _ = _callback_with_a_fresh_code(client)
    assert client.get(callback, headers=IN_WECHAT).status_code == 302
    # The same code again, under a fresh state of this browser: WeChat says 40163.
    _, state = _callback_with_a_fresh_code(client)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    reused = client.get(f"/login/wechat/oa/callback?code={code}&state={state}", headers=IN_WECHAT)
    assert reused.status_code == 400
    assert 'data-kind="invalid_grant"' in reused.get_data(as_text=True)
    assert len(control.calls("/sns/oauth2/access_token")) == 2  # WeChat was asked, and said no


def test_an_invalid_code_is_refused__wechat_40029(
    client: FlaskClient, official_account: str
) -> None:
    _, state = _callback_with_a_fresh_code(client)
    response = client.get(f"/login/wechat/oa/callback?code=forged&state={state}")
    assert response.status_code == 400
    assert 'data-kind="invalid_grant"' in response.get_data(as_text=True)
    assert accounts() == []


def test_a_state_from_another_browser_is_refused(
    client: FlaskClient, control: FakeWeChatControl, official_account: str
) -> None:
    callback, _ = _callback_with_a_fresh_code(client)
    other = client.application.test_client()
    assert other.get(callback, headers=IN_WECHAT).status_code == 400
    assert accounts() == []


def test_automatic_start_signs_a_known_user_in_at_once(
    app: Flask,
    client: FlaskClient,
    control: FakeWeChatControl,
    mini_client: Any,
    official_account: str,
) -> None:
    app.config["IDP_WECHAT_OA_AUTO_START"] = True
    mini_login(client, control, mini_client, "alice")
    control.set_browser_user(OA_APPID, user="alice")
    browser = WeChatBrowser(client.application.test_client())
    response = browser.get("/login?next=/account")
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert browser.scopes == ["snsapi_base"]
    assert session_of(browser.browser) is not None


def test_automatic_start_falls_back_to_the_normal_page_for_an_unknown_openid(
    app: Flask, client: FlaskClient, control: FakeWeChatControl, official_account: str
) -> None:
    app.config["IDP_WECHAT_OA_AUTO_START"] = True
    control.set_browser_user(OA_APPID, user="newcomer")
    browser = WeChatBrowser(client)
    response = browser.get("/login?next=/account")
    assert browser.scopes == ["snsapi_base"] and browser.consent_pages == 0
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?")
    page = client.get(response.headers["Location"], headers=IN_WECHAT)
    assert page.status_code == 200  # the normal page, no second bounce
    assert "/login/wechat/oa?next=/account" in page.get_data(as_text=True)
    # Its button now asks for the profile straight away.
    assert browser.get("/login/wechat/oa?next=/account").headers["Location"].endswith("/choose")
    assert browser.scopes == ["snsapi_base", "snsapi_userinfo"]
    assert accounts() == []


def test_automatic_start_is_off_by_default_and_outside_wechat(
    app: Flask, client: FlaskClient, official_account: str
) -> None:
    assert client.get("/login?next=/account", headers=IN_WECHAT).status_code == 200
    app.config["IDP_WECHAT_OA_AUTO_START"] = True
    assert client.get("/login?next=/account").status_code == 200
    assert client.get("/login", headers=IN_WECHAT).status_code == 200  # after a logout


# --- the fake speaks WeChat's web authorization faithfully ----------------------------------------


def test_fake_authorize_outside_wechat_shows_open_in_wechat(
    fake_wechat: Any, control: FakeWeChatControl, official_account: str
) -> None:
    url = f"{fake_wechat.base_url}/connect/oauth2/authorize"
    params = {"appid": OA_APPID, "redirect_uri": "http://127.0.0.1/cb", "response_type": "code",
              "scope": "snsapi_base", "state": "s"}
    outside = requests.get(url, params=params, headers={"User-Agent": DESKTOP_UA},
                           allow_redirects=False, timeout=5)
    assert outside.status_code == 200 and "请在微信客户端打开链接" in outside.text
    bad_scope = requests.get(url, params={**params, "scope": "snsapi_login"}, headers=IN_WECHAT,
                             allow_redirects=False, timeout=5)
    assert bad_scope.status_code == 400


def test_fake_refused_consent_redirects_with_state_only_and_base_token_has_no_userinfo(
    fake_wechat: Any, control: FakeWeChatControl, official_account: str
) -> None:
    url = f"{fake_wechat.base_url}/connect/oauth2/authorize"
    params = {"appid": OA_APPID, "redirect_uri": "http://127.0.0.1/cb", "response_type": "code",
              "state": "s1"}
    consent = requests.get(url, params={**params, "scope": "snsapi_userinfo"}, headers=IN_WECHAT,
                           allow_redirects=False, timeout=5)
    ticket = re.search(r'name="ticket" value="([^"]+)"', consent.text)
    assert ticket
    refused = requests.post(f"{url}/consent", data={"ticket": ticket.group(1), "decision": "deny"},
                            allow_redirects=False, timeout=5)
    assert refused.headers["Location"] == "http://127.0.0.1/cb?state=s1"

    silent = requests.get(url, params={**params, "scope": "snsapi_base"}, headers=IN_WECHAT,
                          allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(silent.headers["Location"]).query)["code"][0]
    token = requests.get(f"{fake_wechat.base_url}/sns/oauth2/access_token", timeout=5, params={
        "appid": OA_APPID, "secret": OA_SECRET, "code": code,
        "grant_type": "authorization_code"}).json()
    assert token["scope"] == "snsapi_base" and token["unionid"]
    profile = requests.get(f"{fake_wechat.base_url}/sns/userinfo", timeout=5, params={
        "access_token": token["access_token"], "openid": token["openid"]}).json()
    assert profile["errcode"] == 48001


# --- WeChat's refusals at the callback (issue 23 item 11) ---------------------------------------


def test_a_rotated_app_secret_is_a_502_unavailable_page_and_an_operator_log__wechat_40125(
    client: FlaskClient, control: FakeWeChatControl, official_account: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The secret was reset on WeChat's platform and not in the IdP: WeChat answers 40125.
    control.register_app(OA_APPID, "oa-secret-rotated-on-the-platform", kind="officialaccount")
    control.set_browser_user(OA_APPID, user="olivia")
    with caplog.at_level("ERROR", logger="idp.wechat_login"):
        page = WeChatBrowser(client).get("/login/wechat/oa?next=/account")
    assert page.status_code == 502
    body = page.get_data(as_text=True)
    assert 'data-kind="unavailable"' in body and "unavailable at the moment" in body
    assert "try again" not in body.lower()
    assert control.calls("/sns/oauth2/access_token")  # WeChat was asked, over HTTP
    lines = [record.getMessage() for record in caplog.records]
    (line,) = [line for line in lines if "check its appid and secret" in line]
    assert OA_APPID in line and "40125" in line
    assert accounts() == [] and session_of(client) is None


def test_an_unknown_appid_is_a_502_unavailable_page__wechat_40013(
    client: FlaskClient, control: FakeWeChatControl, official_account: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    control.arm_failure("/sns/oauth2/access_token", errcode=40013)
    with caplog.at_level("ERROR", logger="idp.wechat_login"):
        page = WeChatBrowser(client).get("/login/wechat/oa")
    assert page.status_code == 502
    assert 'data-kind="unavailable"' in page.get_data(as_text=True)
    assert any("40013" in r.getMessage() and OA_APPID in r.getMessage() for r in caplog.records)


def test_an_expired_user_token_at_userinfo_asks_to_start_again__wechat_42001(
    client: FlaskClient, control: FakeWeChatControl, official_account: str
) -> None:
    control.set_browser_user(OA_APPID, user="olivia", nickname="奥利维亚")
    control.arm_failure("/sns/userinfo", errcode=42001)
    browser = WeChatBrowser(client)
    page = browser.get("/login/wechat/oa?next=/account")
    assert browser.scopes == ["snsapi_base", "snsapi_userinfo"]
    body = page.get_data(as_text=True)
    assert page.status_code == 400
    assert 'data-kind="authorisation_expired"' in body
    assert "not answering" not in body
    restart = re.search(r'href="([^"]+)" id="restart"', body)
    assert restart and restart.group(1) == "/login/wechat/oa?next=/account"
    # Starting again works: WeChat remembers the consent and answers this time.
    again = browser.get(restart.group(1))
    assert again.status_code == 302 and again.headers["Location"].endswith("/login/wechat/choose")
    assert accounts() == []


def test_the_state_sent_to_wechat_is_alphanumeric__wechat_oauth2_step1(
    client: FlaskClient, official_account: str
) -> None:
    for _ in range(40):  # 40 × 32 characters: a `-` or `_` would show up
        location = client.get("/login/wechat/oa", headers=IN_WECHAT).headers["Location"]
        state = parse_qs(urlsplit(location).query)["state"][0]
        assert re.fullmatch(r"[A-Za-z0-9]{32}", state), state
        website = client.get("/login/wechat").headers["Location"]
        assert re.fullmatch(r"[A-Za-z0-9]{32}", parse_qs(urlsplit(website).query)["state"][0])


def test_fake_refuses_a_state_outside_wechats_alphabet(
    fake_wechat: Any, control: FakeWeChatControl, official_account: str
) -> None:
    url = f"{fake_wechat.base_url}/connect/oauth2/authorize"
    params = {"appid": OA_APPID, "redirect_uri": "http://127.0.0.1/cb", "response_type": "code",
              "scope": "snsapi_base"}
    for state, status in (("abcXYZ019", 302), ("a" * 128, 302), ("a-b_c", 400), ("a" * 129, 400)):
        answer = requests.get(url, params={**params, "state": state}, headers=IN_WECHAT,
                              allow_redirects=False, timeout=5)
        assert answer.status_code == status, state
