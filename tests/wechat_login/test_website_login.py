"""Website login with WeChat: QR connect, the callback, and the new user's choice."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.claims import profile_values
from idp.identity.models import Account, Identity, IdentityKind, LoginSession
from idp.wechat.fake import FakeWeChatControl
from tests.conftest import PASSWORD, csrf_token

from .conftest import WEB_APPID, mini_login, scan_qr

PICTURE = "https://thirdwx.qlogo.cn/mmopen/alice/132"


def accounts() -> list[Account]:
    return list(db.session.scalars(sa.select(Account)))


def live_session(account_id: str) -> LoginSession:
    return db.session.scalars(
        sa.select(LoginSession).where(
            LoginSession.account_id == account_id, LoginSession.ended_at.is_(None)
        )
    ).one()


def signed_in_as(browser: FlaskClient) -> str | None:
    """The account of the browser's IdP session, as the account page sees it."""
    with browser.session_transaction() as session:
        sid = session.get("idp_sid")
    row = db.session.get(LoginSession, sid) if sid else None
    return row.account_id if row is not None and row.ended_at is None else None


def test_login_page_offers_wechat_when_a_website_app_exists(
    client: FlaskClient, wechat_apps: None
) -> None:
    page = client.get("/login?next=/account").get_data(as_text=True)
    assert "Sign in with WeChat" in page
    assert "/login/wechat?next=/account" in page


def test_login_page_has_no_wechat_button_without_a_website_app(client: FlaskClient) -> None:
    assert "Sign in with WeChat" not in client.get("/login").get_data(as_text=True)
    assert client.get("/login/wechat").status_code == 404


def test_start_redirects_to_qrconnect_with_a_fresh_state(
    client: FlaskClient, wechat_apps: None, fake_wechat: Any
) -> None:
    response = client.get("/login/wechat")
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        fake_wechat.base_url + "/connect/qrconnect"
    )
    assert parts.fragment == "wechat_redirect"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query["appid"] == WEB_APPID
    assert query["redirect_uri"] == "http://127.0.0.1:5000/login/wechat/callback"
    assert (query["response_type"], query["scope"]) == ("code", "snsapi_login")
    assert len(query["state"]) >= 32
    again = parse_qs(urlsplit(client.get("/login/wechat").headers["Location"]).query)
    assert again["state"][0] != query["state"]


def test_known_wechat_user_signs_in_and_returns_to_next(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    mini_login(client, control, mini_client, "alice")  # the same person, via the mini-program
    account = accounts()[0]
    control.next_qr_user(WEB_APPID, user="alice", nickname="Alice", headimgurl=PICTURE)
    response = client.get(scan_qr(client, next_url="/account"))
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert accounts() == [account]
    session = live_session(account.id)
    assert (session.amr, session.channel) == ("wechat", "website_wechat")
    website_openid = db.session.scalars(
        sa.select(Identity).where(
            Identity.kind == IdentityKind.WECHAT_OPENID, Identity.namespace == WEB_APPID
        )
    ).one()
    assert website_openid.account_id == account.id
    assert profile_values(account)["picture"] == (PICTURE, "wechat")


def test_new_wechat_user_creates_an_account(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None
) -> None:
    identity = control.next_qr_user(WEB_APPID, user="carol", nickname="卡罗尔", headimgurl=PICTURE)
    choice = client.get(scan_qr(client, next_url="/account"))
    assert choice.status_code == 302
    assert choice.headers["Location"].endswith("/login/wechat/choose")
    assert accounts() == []  # nothing is created before the user chooses

    page = client.get("/login/wechat/choose").get_data(as_text=True)
    assert "卡罗尔" in page
    response = client.post("/login/wechat/create", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/account"

    (account,) = accounts()
    assert account.created_via == "website_wechat"
    assert signed_in_as(client) == account.id
    ids = {(i.kind, i.namespace, i.value) for i in account.identities}
    assert ("wechat_openid", WEB_APPID, identity.openid) in ids
    assert ("wechat_unionid", "", identity.unionid) in ids
    assert profile_values(account)["nickname"] == ("卡罗尔", "wechat")
    assert profile_values(account)["picture"] == (PICTURE, "wechat")

    # The choice is spent: posting it again creates nothing.
    replay = client.post("/login/wechat/create", data={"csrf_token": csrf_token(page)})
    assert replay.status_code == 400 and len(accounts()) == 1


def test_choice_forms_need_the_csrf_token(
    app: Flask, client: FlaskClient, control: FakeWeChatControl, wechat_apps: None
) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    control.next_qr_user(WEB_APPID, user="carol")
    client.get(scan_qr(client))
    assert client.post("/login/wechat/create").status_code == 400
    link = client.post(
        "/login/wechat/link", data={"identifier": "+8613800138000", "password": PASSWORD}
    )
    assert link.status_code == 400
    assert accounts() == []


def test_new_wechat_user_links_an_existing_account_with_its_password(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None, make_user: Any
) -> None:
    existing = make_user(phone="+8613800138000", name="Dave")
    identity = control.next_qr_user(WEB_APPID, user="dave", nickname="Dave W")
    client.get(scan_qr(client, next_url="/account"))
    page = client.get("/login/wechat/choose").get_data(as_text=True)

    wrong = client.post(
        "/login/wechat/link",
        data={"csrf_token": csrf_token(page), "identifier": "+8613800138000", "password": "nope"},
    )
    assert wrong.status_code == 400
    assert "The phone/email or password is not right." in wrong.get_data(as_text=True)
    assert signed_in_as(client) is None

    right = client.post(
        "/login/wechat/link",
        data={
            "csrf_token": csrf_token(page),
            "identifier": "138 0013 8000",
            "password": PASSWORD,
        },
    )
    assert right.status_code == 302 and right.headers["Location"] == "/account"
    assert accounts() == [existing]
    assert live_session(existing.id).amr == "pwd wechat"
    ids = {(i.kind, i.value) for i in existing.identities}
    assert ("wechat_unionid", identity.unionid) in ids
    assert ("wechat_openid", identity.openid) in ids
    assert profile_values(existing)["name"] == ("Dave", "website")
    assert profile_values(existing)["nickname"] == ("Dave W", "wechat")

    # From now on WeChat alone signs in to that account.
    other_browser = client.application.test_client()
    control.next_qr_user(WEB_APPID, user="dave")
    response = other_browser.get(scan_qr(other_browser))
    assert response.status_code == 302 and "/choose" not in response.headers["Location"]
    assert signed_in_as(other_browser) == existing.id


def test_linking_an_account_that_holds_another_wechat_user_is_refused(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None, make_user: Any
) -> None:
    existing = make_user(phone="+8613800138000")
    control.next_qr_user(WEB_APPID, user="erin")
    client.get(scan_qr(client))
    page = client.get("/login/wechat/choose").get_data(as_text=True)
    client.post(
        "/login/wechat/link",
        data={"csrf_token": csrf_token(page), "identifier": "+8613800138000", "password": PASSWORD},
    )
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/login").get_data(True))})

    browser = client.application.test_client()
    control.next_qr_user(WEB_APPID, user="frank")
    browser.get(scan_qr(browser))
    page = browser.get("/login/wechat/choose").get_data(as_text=True)
    refused = browser.post(
        "/login/wechat/link",
        data={"csrf_token": csrf_token(page), "identifier": "+8613800138000", "password": PASSWORD},
    )
    assert refused.status_code == 409
    assert signed_in_as(browser) is None
    unionids = [i for i in existing.identities if i.kind == IdentityKind.WECHAT_UNIONID]
    assert len(unionids) == 1


def test_snapshot_user_gets_no_account(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None
) -> None:
    control.next_qr_user(WEB_APPID, user="ghost", is_snapshotuser=True)
    response = client.get(scan_qr(client))
    assert response.status_code == 200
    assert 'data-kind="snapshot"' in response.get_data(as_text=True)
    assert accounts() == [] and signed_in_as(client) is None
    assert control.calls("/sns/userinfo") == []


def test_refusal_on_the_phone_changes_nothing(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None
) -> None:
    control.next_qr_refusal(WEB_APPID)
    callback = scan_qr(client)
    assert "code=" not in callback
    response = client.get(callback)
    assert 'data-kind="refused"' in response.get_data(as_text=True)
    assert accounts() == [] and control.calls("/sns/oauth2/access_token") == []


def test_state_from_another_browser_is_refused(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None
) -> None:
    control.next_qr_user(WEB_APPID, user="mallory")
    callback = scan_qr(client)  # the attacker's own WeChat login, started in their browser
    victim = client.application.test_client()
    victim.get("/login/wechat")  # the victim has a state of their own, just not this one
    response = victim.get(callback)
    assert response.status_code == 400
    assert 'data-kind="expired"' in response.get_data(as_text=True)
    assert accounts() == [] and signed_in_as(victim) is None
    assert control.calls("/sns/oauth2/access_token") == []


@pytest.mark.parametrize("state", [None, "", "forged-state"])
def test_missing_or_wrong_state_is_refused(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None, state: str | None
) -> None:
    control.next_qr_user(WEB_APPID, user="carol")
    callback = urlsplit(scan_qr(client))
    query = {key: values[0] for key, values in parse_qs(callback.query).items()}
    query.pop("state")
    if state is not None:
        query["state"] = state
    response = client.get(callback.path, query_string=query)
    assert response.status_code == 400 and accounts() == []


def test_callback_is_single_use(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    mini_login(client, control, mini_client, "alice")
    control.next_qr_user(WEB_APPID, user="alice")
    callback = scan_qr(client)
    assert client.get(callback).status_code == 302
    replay = client.get(callback)
    assert replay.status_code == 400
    assert len(control.calls("/sns/oauth2/access_token")) == 1


def test_next_must_be_a_local_path(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    mini_login(client, control, mini_client, "alice")
    control.next_qr_user(WEB_APPID, user="alice")
    response = client.get(scan_qr(client, next_url="https://evil.example/"))
    assert response.headers["Location"] == "/"


def test_wechat_busy_at_the_callback_is_a_friendly_503(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None
) -> None:
    control.next_qr_user(WEB_APPID, user="carol")
    callback = scan_qr(client)
    control.arm_failure("/sns/oauth2/access_token", errcode=-1)
    response = client.get(callback)
    assert response.status_code == 503
    assert 'data-kind="temporarily_unavailable"' in response.get_data(as_text=True)
    assert accounts() == []


def test_qr_login_continues_an_authorization_request(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, website: Any
) -> None:
    """The OIDC code flow sends the browser to /login?next=…; WeChat login keeps that `next`."""
    from tests.conftest import CodeFlow

    mini_login(client, control, mini_client, "alice")
    flow = CodeFlow(client, website[0], website[1])
    to_login = flow.authorize()
    next_url = parse_qs(urlsplit(to_login.headers["Location"]).query)["next"][0]
    control.next_qr_user(WEB_APPID, user="alice")
    back = client.get(scan_qr(client, next_url=next_url))
    assert back.headers["Location"] == next_url
    tokens = flow.exchange(flow.code()).get_json()
    assert tokens["id_token"]


def test_a_rotated_app_secret_is_a_502_unavailable_page__wechat_40125(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    control.register_app(WEB_APPID, "web-secret-rotated-on-the-platform", kind="website")
    control.next_qr_user(WEB_APPID, user="carol")
    with caplog.at_level("ERROR", logger="idp.wechat_login"):
        response = client.get(scan_qr(client))
    assert response.status_code == 502
    assert 'data-kind="unavailable"' in response.get_data(as_text=True)
    assert any("check its appid and secret" in r.getMessage() for r in caplog.records)
    assert accounts() == []


def test_an_expired_user_token_at_userinfo_asks_to_start_again__wechat_42001(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None
) -> None:
    control.next_qr_user(WEB_APPID, user="carol")
    callback = scan_qr(client, next_url="/account")
    control.arm_failure("/sns/userinfo", errcode=42001)
    response = client.get(callback)
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and 'data-kind="authorisation_expired"' in body
    assert 'href="/login/wechat?next=/account" id="restart"' in body
    assert accounts() == []
