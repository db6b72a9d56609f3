"""Sessions (device, network, method; end one or all others, with back-channel logout) and
connected apps (consents and refresh tokens; revoke one)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.events.models import EventDelivery
from idp.extensions import db
from idp.identity.models import AuditEvent, LoginSession
from idp.oidc.models import Consent, RefreshToken
from tests.account_centre.conftest import post_form
from tests.conftest import CodeFlow, login
from tests.signed_in_device import SignedInDevice

IPHONE_WECHAT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40")


def _second_browser(app: Flask, user_agent: str = IPHONE_WECHAT) -> FlaskClient:
    other = app.test_client()
    other.environ_base["HTTP_USER_AGENT"] = user_agent
    other.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    assert login(other, "+8613800138000").status_code == 302
    return other


def test_sessions_show_device_network_and_method(app: Flask, signed_in: FlaskClient) -> None:
    _second_browser(app)
    page = signed_in.get("/account/sessions").get_data(as_text=True)
    assert "WeChat Browser" in page and "iOS 17" in page
    assert "203.0.113.7" in page
    assert "Password" in page
    assert "this browser" in page


def test_end_another_session_sends_backchannel_logout__backchannel_logout_2_5(
    app: Flask, signed_in: FlaskClient, make_client: Any, user: Any
) -> None:
    rp, secret = make_client(name="Shop", backchannel_logout_uri="https://shop.example/bcl",
                             redirect_uris=["https://rp.example/callback"])
    other = _second_browser(app)
    tokens = CodeFlow(other, rp, secret).tokens(scope="openid offline_access")
    other_sid = db.session.scalars(
        select(LoginSession.id).where(LoginSession.user_agent == IPHONE_WECHAT)
    ).one()
    response = post_form(signed_in, "/account/sessions", f"/account/sessions/{other_sid}/end")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(LoginSession, other_sid).ended_at is not None
    assert other.get("/account/sessions").status_code == 302  # signed out there
    deliveries = db.session.scalars(select(EventDelivery).where(
        EventDelivery.client_id == rp.client_id)).all()
    assert [d.event_type for d in deliveries] == ["backchannel-logout"]
    assert other_sid in deliveries[0].payload
    refreshed = CodeFlow(other, rp, secret).refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400  # the session's refresh token died with it
    assert signed_in.get("/account/sessions").status_code == 200  # this one lives
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "session.end")).one()


def test_ending_a_device_in_the_account_centre_signs_its_relying_parties_out(
    app: Flask, signed_in: FlaskClient, make_client: Any, backchannel_receiver: Any
) -> None:
    device = SignedInDevice.start(app, "+8613800138000", make_client, backchannel_receiver)
    response = post_form(signed_in, "/account/sessions", f"/account/sessions/{device.sid}/end")
    assert response.status_code == 303
    device.assert_signed_out(backchannel_receiver)


def test_end_all_other_sessions_keeps_this_one(app: Flask, signed_in: FlaskClient) -> None:
    others = [_second_browser(app), _second_browser(app, "curl/8")]
    response = post_form(signed_in, "/account/sessions", "/account/sessions/end-others")
    assert response.status_code == 303
    assert all(o.get("/account/sessions").status_code == 302 for o in others)
    assert signed_in.get("/account/sessions").status_code == 200


def test_ending_someone_elses_session_is_404(app: Flask, signed_in: FlaskClient,
                                             make_user: Any) -> None:
    make_user(phone="+8613900001111")
    stranger = app.test_client()
    login(stranger, "+8613900001111")
    theirs = db.session.scalars(select(LoginSession.id).where(
        LoginSession.account_id != signed_in_account_id())).first()
    response = post_form(signed_in, "/account/security", f"/account/sessions/{theirs}/end")
    assert response.status_code == 404
    assert stranger.get("/account/sessions").status_code == 200


def signed_in_account_id() -> str:
    from idp.identity.accounts import find_account
    from idp.identity.models import IdentityKind

    account = find_account(IdentityKind.PHONE, "+8613800138000")
    assert account is not None
    return account.id


def test_connected_apps_list_and_revoke__rfc7009(
    app: Flask, signed_in: FlaskClient, make_client: Any
) -> None:
    rp, secret = make_client(name="Shop", backchannel_logout_uri="https://shop.example/bcl",
                             redirect_uris=["https://rp.example/callback"])
    flow = CodeFlow(signed_in, rp, secret)
    tokens = flow.tokens(scope="openid profile offline_access")
    page = signed_in.get("/account/apps").get_data(as_text=True)
    assert "Shop" in page and "offline_access" in page
    response = post_form(signed_in, "/account/apps", f"/account/apps/{rp.client_id}/revoke")
    assert response.status_code == 303
    assert db.session.scalars(select(Consent)).all() == []
    assert all(t.revoked_at for t in db.session.scalars(select(RefreshToken)))
    assert flow.refresh(tokens["refresh_token"]).status_code == 400
    userinfo = signed_in.get("/oauth/userinfo",
                             headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401
    assert db.session.scalars(select(EventDelivery.event_type)).all() == ["backchannel-logout"]
    page = signed_in.get("/account/apps").get_data(as_text=True)
    # No longer connected; still listed among the apps that received data (issue 28 item 5).
    connected, _, received_before = page.partition('id="past-recipients"')
    assert "Shop" not in connected and "Shop" in received_before
    assert signed_in.get("/account/sessions").status_code == 200  # the IdP session lives on
    again = post_form(signed_in, "/account/security", f"/account/apps/{rp.client_id}/revoke")
    assert again.status_code == 404
