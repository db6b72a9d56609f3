# ruff: noqa: F811 - the WeChat fixtures are imported from tests/wechat_login/conftest.py
"""Adding a way to sign in — WeChat by the website's QR code or by the Official Account, a phone
number, an authenticator app, a passkey — and confirming the merge a WeChat bind offers, need a
sign-in within IDP_REAUTH_SECONDS (ASVS V3.7.1; NIST SP 800-63B §6.1.2.1), as unbinding does.

Each path: a stale session is sent to re-authenticate and nothing is bound; after the
re-authentication the browser comes back to what it was doing, and a fresh session succeeds.
Binding starts only with a POST carrying the CSRF token (ASVS V4.2.2). Real HTTP to the fake
WeChat and the fake SMS provider on loopback; both database backends."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.extensions import db
from idp.identity.accounts import create_account, find_account, link_identity
from idp.identity.audit import Actor
from idp.identity.models import Account, AccountStatus, IdentityKind, LoginSession, MergeRecord
from idp.second_factor.models import SecondFactor
from idp.wechat.apps import create_wechat_app
from idp.wechat.fake import FakeWeChatControl
from tests.account_centre.conftest import post_form, sms_code, start_wechat_bind
from tests.account_centre.soft_authenticator import SoftAuthenticator
from tests.conftest import PASSWORD, csrf_token
from tests.wechat_login.conftest import (  # noqa: F401 - fixtures
    WEB_APPID,
    app_config,
    control,
    wechat_apps,
)

PHONE = "+8613800138000"
NEW_PHONE = "+8613912345678"
OA_APPID = "wxc0000000000000c7"
OA_SECRET = "oa-secret-reauth-0011223344556677"
IN_WECHAT = {"User-Agent": (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN")}
REAUTH = "/account/reauth"


def _age_sessions(app: Flask, beyond_window: bool = True, seconds: int = 60) -> None:
    """Moves every session's last proof back: past the window by `seconds`, or to `seconds`
    before its end."""
    window = int(app.config["IDP_REAUTH_SECONDS"])
    back = window + seconds if beyond_window else window - seconds
    for row in db.session.scalars(select(LoginSession)):
        row.auth_time = row.auth_time - timedelta(seconds=back)
    db.session.commit()


def _sent_to_reauth(response: Any, back_to: str) -> None:
    assert response.status_code == 302, response.status_code
    location = urlsplit(response.headers["Location"])
    assert location.path == REAUTH
    assert parse_qs(location.query)["next"] == [back_to]


def _reauthenticate(browser: FlaskClient, back_to: str, headers: dict[str, str] | None = None
                    ) -> None:
    page = browser.get(f"{REAUTH}?next={back_to}", headers=headers or {})
    token = re.search(r'name="pw-csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert token
    done = browser.post(REAUTH, headers=headers or {}, data={
        "pw-csrf_token": token.group(1), "pw-password": PASSWORD, "action": "pw",
        "next": back_to})
    assert done.status_code == 302 and done.headers["Location"] == back_to


def _press(browser: FlaskClient, action_url: str, headers: dict[str, str] | None = None
           ) -> Any:
    """A POST to `action_url` with a valid CSRF token (read from another page)."""
    token = csrf_token(browser.get("/account/security", headers=headers or {})
                       .get_data(as_text=True))
    return browser.post(action_url, headers=headers or {}, data={"csrf_token": token})


def _finish_at_wechat(browser: FlaskClient, start: Any, headers: dict[str, str] | None = None
                      ) -> Any:
    """Follows the start's redirect to the fake WeChat and its answer back to the callback."""
    answer = requests.get(start.headers["Location"], headers=headers or {},
                          allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text[:300]
    location = urlsplit(answer.headers["Location"])
    assert location.path == "/account/ways/wechat/callback"
    return browser.get(f"{location.path}?{location.query}", headers=headers or {})


def _wechat_ids(account_id: str) -> list[str]:
    account = db.session.get(Account, account_id)
    assert account is not None
    return [i.kind for i in account.identities if i.kind.startswith("wechat")]


# --- WeChat by the website's QR code -------------------------------------------------------------


def test_a_stale_session_cannot_bind_wechat_by_qr_code__asvs_v3_7_1(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    wechat_apps: None,
) -> None:
    who = control.next_qr_user(WEB_APPID, user="mallory-wx", unionid="u-mallory")
    _age_sessions(app)
    # The page with the button, and the button itself, both send the stale session away.
    _sent_to_reauth(signed_in.get("/account/ways/wechat"), "/account/ways/wechat")
    pressed = _press(signed_in, "/account/ways/wechat")
    _sent_to_reauth(pressed, "/account/ways/wechat")
    assert control.calls("/sns/oauth2/access_token") == []
    assert find_account(IdentityKind.WECHAT_OPENID, who.openid, WEB_APPID) is None
    assert _wechat_ids(user.id) == []
    # Confirmed: back on the page with the button, which goes on to WeChat.
    _reauthenticate(signed_in, "/account/ways/wechat")
    bound = _finish_at_wechat(signed_in, start_wechat_bind(signed_in))
    assert bound.status_code == 302
    assert find_account(IdentityKind.WECHAT_OPENID, who.openid, WEB_APPID).id == user.id


def test_a_get_does_not_start_binding__asvs_v4_2_2(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    wechat_apps: None,
) -> None:
    page = signed_in.get("/account/ways/wechat")
    assert page.status_code == 200 and "Location" not in page.headers
    html = page.get_data(as_text=True)
    assert 'method="post"' in html and 'id="bind-wechat"' in html
    assert page.headers["Cache-Control"] == "no-store"
    signed_in.get("/locale/zh_CN?next=/account/ways/wechat")
    assert "使用微信继续" in signed_in.get("/account/ways/wechat").get_data(as_text=True)
    without_token = signed_in.post("/account/ways/wechat", data={})
    assert without_token.status_code == 400
    assert _wechat_ids(user.id) == []


def test_a_bind_state_serves_only_the_session_that_pressed_the_button(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    wechat_apps: None,
) -> None:
    """The state names the session that was fresh when it pressed the button; presented in
    another session of the account, it binds nothing. (Defence in depth: every way to a new
    session clears the cookie, state included, so here the cookie is edited by hand.)"""
    who = control.next_qr_user(WEB_APPID, user="nina-wx", unionid="u-nina")
    start = start_wechat_bind(signed_in)
    with signed_in.session_transaction() as cookie:
        old = db.session.get(LoginSession, cookie["idp_sid"])
        replacement = LoginSession(
            id="replacement-session-" + "x" * 20, account_id=user.id, auth_time=old.auth_time,
            amr=old.amr, channel=old.channel, created_at=old.created_at,
            expires_at=old.expires_at)
        db.session.add(replacement)
        db.session.commit()
        cookie["idp_sid"] = replacement.id
    assert _finish_at_wechat(signed_in, start).status_code == 302
    assert find_account(IdentityKind.WECHAT_OPENID, who.openid, WEB_APPID) is None


# --- WeChat by the Official Account, inside WeChat's browser ------------------------------------


def test_a_stale_session_cannot_bind_wechat_by_the_official_account__asvs_v3_7_1(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    wechat_apps: None,
) -> None:
    control.register_app(OA_APPID, OA_SECRET, kind="officialaccount")
    create_wechat_app("officialaccount", OA_APPID, OA_SECRET, name="服务号")
    who = control.set_browser_user(OA_APPID, user="mallory-oa", unionid="u-mallory-oa")
    _age_sessions(app)
    _sent_to_reauth(signed_in.get("/account/ways/wechat", headers=IN_WECHAT),
                    "/account/ways/wechat")
    pressed = _press(signed_in, "/account/ways/wechat", IN_WECHAT)
    _sent_to_reauth(pressed, "/account/ways/wechat")
    assert control.calls("/sns/oauth2/access_token") == []
    assert find_account(IdentityKind.WECHAT_OPENID, who.openid, OA_APPID) is None
    _reauthenticate(signed_in, "/account/ways/wechat", IN_WECHAT)
    start = start_wechat_bind(signed_in, IN_WECHAT)
    assert urlsplit(start.headers["Location"]).path == "/connect/oauth2/authorize"
    assert _finish_at_wechat(signed_in, start, IN_WECHAT).status_code == 302
    assert find_account(IdentityKind.WECHAT_OPENID, who.openid, OA_APPID).id == user.id


# --- the merge a bind offers -------------------------------------------------------------------


def _offer_merge(signed_in: FlaskClient, control: FakeWeChatControl) -> Account:
    actor = Actor.system("test")
    other = create_account(actor, "miniprogram")
    link_identity(other, IdentityKind.WECHAT_UNIONID, "u-olivia", actor, verified=True,
                  proof="wechat_login")
    db.session.commit()
    control.next_qr_user(WEB_APPID, user="olivia-wx", unionid="u-olivia")
    offered = _finish_at_wechat(signed_in, start_wechat_bind(signed_in))
    assert offered.headers["Location"] == "/account/ways/wechat/merge"
    return other


def test_a_stale_session_cannot_confirm_the_merge__asvs_v3_7_1(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    wechat_apps: None,
) -> None:
    other = _offer_merge(signed_in, control)
    _age_sessions(app)
    _sent_to_reauth(signed_in.get("/account/ways/wechat/merge"), "/account/ways/wechat/merge")
    confirmed = _press(signed_in, "/account/ways/wechat/merge")
    _sent_to_reauth(confirmed, "/account/ways/wechat/merge")
    db.session.expire_all()
    assert db.session.get(Account, other.id).status == AccountStatus.ACTIVE
    assert db.session.scalars(select(MergeRecord)).all() == []
    # Confirmed: back at the preview (the offer waited), and the merge goes through.
    _reauthenticate(signed_in, "/account/ways/wechat/merge")
    merged = post_form(signed_in, "/account/ways/wechat/merge")
    assert merged.status_code == 303
    db.session.expire_all()
    assert db.session.get(Account, other.id).status == AccountStatus.MERGED


def test_the_merge_does_not_make_a_session_fresh__nist_800_63b_6_1_2_1(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    wechat_apps: None,
) -> None:
    """The merge's new session is as old a proof as the session it replaces: once that proof
    is past the window, the next sensitive change asks again."""
    other = _offer_merge(signed_in, control)
    _age_sessions(app, beyond_window=False, seconds=30)  # still fresh, for 30 more seconds
    proved_at = db.session.scalars(select(LoginSession.auth_time)).one()
    assert post_form(signed_in, "/account/ways/wechat/merge").status_code == 303
    db.session.expire_all()
    assert db.session.get(Account, other.id).status == AccountStatus.MERGED
    with signed_in.session_transaction() as cookie:
        survivor_session = db.session.get(LoginSession, cookie["idp_sid"])
    assert survivor_session is not None and survivor_session.ended_at is None
    assert abs((survivor_session.auth_time - proved_at).total_seconds()) < 1
    # 31 seconds later (the proof moved back instead): the change is refused.
    survivor_session.auth_time = survivor_session.auth_time - timedelta(seconds=31)
    db.session.commit()
    _sent_to_reauth(signed_in.get("/account/password"), "/account/password")


# --- a phone number ----------------------------------------------------------------------------


def test_a_stale_session_cannot_add_a_phone_number__asvs_v3_7_1(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    sent = post_form(signed_in, "/account/phone", phone=NEW_PHONE)
    assert sent.status_code == 303
    code = sms_code(app, NEW_PHONE)
    _age_sessions(app)
    _sent_to_reauth(signed_in.get("/account/phone"), "/account/phone")
    refused = signed_in.post("/account/phone/confirm", data={
        "code": code, "csrf_token": csrf_token(signed_in.get("/account/security")
                                               .get_data(as_text=True))})
    _sent_to_reauth(refused, "/account/phone/confirm")
    assert find_account(IdentityKind.PHONE, NEW_PHONE) is None
    assert find_account(IdentityKind.PHONE, PHONE).id == user.id
    # Confirmed: back at the code's page (the code was not spent by the refusal).
    _reauthenticate(signed_in, "/account/phone/confirm")
    done = post_form(signed_in, "/account/phone/confirm", code=code)
    assert done.status_code == 303
    assert find_account(IdentityKind.PHONE, NEW_PHONE).id == user.id


# --- an authenticator app (TOTP) ---------------------------------------------------------------


def test_a_stale_session_cannot_enrol_an_authenticator_app__asvs_v3_7_1(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    page = signed_in.get("/account/two-factor/totp").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    _age_sessions(app)
    _sent_to_reauth(signed_in.get("/account/two-factor/totp"), "/account/two-factor/totp")
    refused = signed_in.post("/account/two-factor/totp", data={
        "code": pyotp.TOTP(secret).now(), "csrf_token": csrf_token(page)})
    _sent_to_reauth(refused, "/account/two-factor/totp")
    assert db.session.scalars(select(SecondFactor)).all() == []
    _reauthenticate(signed_in, "/account/two-factor/totp")
    done = post_form(signed_in, "/account/two-factor/totp", code=pyotp.TOTP(secret).now())
    assert done.status_code == 200 and 'id="recovery-codes"' in done.get_data(as_text=True)
    assert [f.kind for f in db.session.scalars(select(SecondFactor))] == ["totp"]


# --- a passkey ---------------------------------------------------------------------------------


def _json_headers(browser: FlaskClient) -> dict[str, str]:
    token = csrf_token(browser.get("/account/security").get_data(as_text=True))
    return {"X-CSRFToken": token, "Content-Type": "application/json"}


def test_a_stale_session_cannot_enrol_a_passkey__asvs_v3_7_1(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    authenticator = SoftAuthenticator()
    origin = app.config["IDP_ISSUER"]
    headers = _json_headers(signed_in)
    options = signed_in.post("/account/two-factor/passkey/options", headers=headers)
    assert options.status_code == 200
    credential = authenticator.registration(options.get_json(), origin)
    _age_sessions(app)
    for url, body in (("/account/two-factor/passkey", credential),
                      ("/account/two-factor/passkey/options", {})):
        refused = signed_in.post(url, headers=headers, json=body)
        assert refused.status_code == 403, refused.status_code
        reauth = urlsplit(refused.get_json()["reauth"])
        assert reauth.path == REAUTH and parse_qs(reauth.query)["next"] == ["/account/two-factor"]
    assert db.session.scalars(select(SecondFactor)).all() == []
    _reauthenticate(signed_in, "/account/two-factor")
    options = signed_in.post("/account/two-factor/passkey/options", headers=headers)
    added = signed_in.post("/account/two-factor/passkey", headers=headers,
                           json=authenticator.registration(options.get_json(), origin))
    assert added.status_code == 201, added.get_json()
    assert [f.kind for f in db.session.scalars(select(SecondFactor))] == ["webauthn"]
