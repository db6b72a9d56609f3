# ruff: noqa: F811 - the WeChat fixtures are imported from tests/wechat_login/conftest.py
"""After a second factor is added, what was signed in before it — other browsers' sessions,
the mini-program's refresh token, an app's `offline_access` token that outlived its session —
keeps working without `mfa` until it ends. The two-step page says so, and right after an
enrolment offers to sign out everywhere else; accepting ends all of them through the engine's
sign-out path and keeps this browser signed in (RFC 8176 §2 `mfa`; NIST SP 800-63B §6.1.2.3)."""

from __future__ import annotations

import re
from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.extensions import db
from idp.identity.accounts import link_identity
from idp.identity.audit import Actor
from idp.identity.models import AuditEvent, IdentityKind
from idp.wechat.fake import FakeWeChatControl
from tests.account_centre.conftest import post_form
from tests.account_centre.soft_authenticator import SoftAuthenticator
from tests.conftest import CodeFlow, csrf_token, login
from tests.wechat_login.conftest import (  # noqa: F401 - fixtures
    MINI_APPID,
    app_config,
    control,
    exchange,
    mini_client,
    wechat_apps,
)

PHONE = "+8613800138000"
OFFER = 'id="sign-out-elsewhere"'
NOTE = 'id="factor-and-sessions"'


def _enrol_totp(browser: FlaskClient) -> None:
    page = browser.get("/account/two-factor/totp").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    done = post_form(browser, "/account/two-factor/totp", code=pyotp.TOTP(secret).now())
    assert done.status_code == 200 and 'id="recovery-codes"' in done.get_data(as_text=True)


def _mini_program_tokens(client: FlaskClient, control: FakeWeChatControl, mini: Any,
                         user: Any) -> dict[str, Any]:
    """The user's own WeChat signs in to the mini-program: a token exchange, no IdP session."""
    issued = control.issue_js_code(MINI_APPID, user="alice-mini")
    link_identity(user, IdentityKind.WECHAT_OPENID, issued.openid, Actor.system("test"),
                  namespace=MINI_APPID, verified=True, proof="wechat_login")
    db.session.commit()
    response = exchange(client, mini, issued.code)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def _refresh(client: FlaskClient, client_id: str, refresh_token: str,
             secret: str | None = None) -> int:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if secret is None:
        data["client_id"] = client_id
    answer = client.post("/oauth/token", data=data,
                         auth=(client_id, secret) if secret is not None else None)
    return answer.status_code


def test_after_enrolment_signing_out_elsewhere_ends_older_sessions_and_tokens(
    app: Flask, signed_in: FlaskClient, user: Any, website: Any, control: FakeWeChatControl,
    mini_client: Any,
) -> None:
    rp, rp_secret = website
    # Signed in before the factor: another browser with an app's tokens, an app that kept its
    # refresh token after its browser signed out, and the mini-program.
    other = app.test_client()
    login(other, PHONE)
    in_other_session = CodeFlow(other, rp, rp_secret).tokens(scope="openid offline_access")
    gone = app.test_client()
    login(gone, PHONE)
    outlived = CodeFlow(gone, rp, rp_secret).tokens(scope="openid offline_access")
    post_form(gone, "/account/security", "/logout")
    mini = _mini_program_tokens(app.test_client(), control, mini_client, user)
    here = CodeFlow(signed_in, rp, rp_secret).tokens(scope="openid offline_access")

    before = signed_in.get("/account/two-factor").get_data(as_text=True)
    assert NOTE in before and OFFER not in before  # said always, offered after an enrolment
    _enrol_totp(signed_in)
    page = signed_in.get("/account/two-factor").get_data(as_text=True)
    assert OFFER in page and "Sign out everywhere else" in page
    done = post_form(signed_in, "/account/two-factor", "/account/two-factor/sign-out-elsewhere")
    assert done.status_code == 303
    after = signed_in.get("/account/two-factor").get_data(as_text=True)
    assert "Signed out everywhere else" in after and OFFER not in after

    assert signed_in.get("/account/sessions").status_code == 200  # this browser goes on
    assert other.get("/account/sessions").status_code == 302
    tokens_client = app.test_client()
    assert _refresh(tokens_client, rp.client_id, in_other_session["refresh_token"],
                    rp_secret) == 400
    assert _refresh(tokens_client, rp.client_id, outlived["refresh_token"], rp_secret) == 400
    assert _refresh(tokens_client, mini_client.client_id, mini["refresh_token"]) == 400
    bearer = {"Authorization": f"Bearer {mini['access_token']}"}
    assert tokens_client.get("/oauth/userinfo", headers=bearer).status_code == 401
    # The tokens issued in this browser's session stay.
    assert _refresh(tokens_client, rp.client_id, here["refresh_token"], rp_secret) == 200
    actions = db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.reason == "second factor added")).all()
    assert {"session.end_others", "refresh_token.revoke_others"} <= set(actions)


def test_without_the_offer_older_tokens_keep_working(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    mini_client: Any,
) -> None:
    """What the page warns of: declining (doing nothing) leaves the mini-program signed in."""
    mini = _mini_program_tokens(app.test_client(), control, mini_client, user)
    _enrol_totp(signed_in)
    assert OFFER in signed_in.get("/account/two-factor").get_data(as_text=True)
    assert _refresh(app.test_client(), mini_client.client_id, mini["refresh_token"]) == 200


def test_a_passkey_enrolment_makes_the_offer_too(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    other = app.test_client()
    login(other, PHONE)
    token = csrf_token(signed_in.get("/account/security").get_data(as_text=True))
    headers = {"X-CSRFToken": token, "Content-Type": "application/json"}
    options = signed_in.post("/account/two-factor/passkey/options", headers=headers)
    credential = SoftAuthenticator().registration(options.get_json(), app.config["IDP_ISSUER"])
    added = signed_in.post("/account/two-factor/passkey", headers=headers, json=credential)
    assert added.status_code == 201, added.get_json()
    assert OFFER in signed_in.get("/account/two-factor").get_data(as_text=True)
    assert post_form(signed_in, "/account/two-factor",
                     "/account/two-factor/sign-out-elsewhere").status_code == 303
    assert other.get("/account/sessions").status_code == 302


def test_no_offer_when_nothing_is_signed_in_elsewhere_and_the_page_says_it_in_chinese(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    _enrol_totp(signed_in)
    signed_in.get("/locale/zh_CN?next=/account/two-factor")
    page = signed_in.get("/account/two-factor").get_data(as_text=True)
    assert OFFER not in page
    assert NOTE in page and "添加两步验证方式不会退出已登录的地方" in page


def test_the_offer_is_in_chinese_and_needs_the_csrf_token(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    other = app.test_client()
    login(other, PHONE)
    _enrol_totp(signed_in)
    signed_in.get("/locale/zh_CN?next=/account/two-factor")
    assert "退出其他所有地方" in signed_in.get("/account/two-factor").get_data(as_text=True)
    assert signed_in.post("/account/two-factor/sign-out-elsewhere", data={}).status_code == 400
    assert other.get("/account/sessions").status_code == 200
