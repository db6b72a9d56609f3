"""Ways in (list, unbind, last one refused), re-authentication within 5 minutes, password change
with the strength estimate, and phone change by SMS to the new number."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.extensions import db
from idp.identity.accounts import find_account, identities_of, link_identity
from idp.identity.audit import Actor
from idp.identity.models import AuditEvent, Identity, IdentityKind, LoginSession
from tests.account_centre.conftest import post_form, sms_code
from tests.conftest import PASSWORD, CodeFlow, login

PHONE = "+8613800138000"
NEW_PHONE = "+8613912345678"


def _age_sessions(minutes: int = 10) -> None:
    for row in db.session.scalars(select(LoginSession)):
        row.auth_time = row.auth_time - timedelta(minutes=minutes)
    db.session.commit()


def _identity(user: Any, kind: str) -> Identity:
    return next(i for i in identities_of(user) if i.kind == kind)


def test_ways_in_list_wechat_by_app_name(app: Flask, signed_in: FlaskClient, user: Any) -> None:
    from idp.wechat.apps import create_wechat_app

    create_wechat_app("website", "wxweb000000000001", "s" * 32, name="Our website")
    link_identity(user, IdentityKind.WECHAT_OPENID, "o-web-1", Actor.system("test"),
                  namespace="wxweb000000000001", verified=True, proof="wechat_login")
    db.session.commit()
    page = signed_in.get("/account/security").get_data(as_text=True)
    assert "WeChat (website QR)" in page and "Our website" in page
    assert "Password" in page and "138****8000" in page
    assert "no-store" in signed_in.get("/account/security").headers["Cache-Control"]


def test_unbind_wechat_then_last_way_is_refused__rules_7(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    link_identity(user, IdentityKind.WECHAT_OPENID, "o-web-1", Actor.system("test"),
                  namespace="wxweb000000000001", verified=True, proof="wechat_login")
    db.session.commit()
    wechat = _identity(user, IdentityKind.WECHAT_OPENID)
    response = post_form(signed_in, "/account/security", f"/account/ways/{wechat.id}/unbind")
    assert response.status_code == 303
    assert find_account(IdentityKind.WECHAT_OPENID, "o-web-1", "wxweb000000000001") is None
    # The verified phone signs in by SMS code: the password may go, then the phone is the last.
    password_id = _identity(user, IdentityKind.PASSWORD).id
    response = post_form(signed_in, "/account/security", f"/account/ways/{password_id}/unbind")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Identity, password_id) is None
    phone = _identity(user, IdentityKind.PHONE)
    response = post_form(signed_in, "/account/security", f"/account/ways/{phone.id}/unbind")
    assert response.status_code == 303
    page = signed_in.get("/account/security").get_data(as_text=True)
    assert "last way to sign in" in page
    assert db.session.get(Identity, phone.id) is not None
    refused = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "identity.unlink_refused")).one()
    assert refused.reason == "last_way_to_log_in"


def test_unbind_someone_elses_identity_is_404(app: Flask, signed_in: FlaskClient,
                                              make_user: Any) -> None:
    other = make_user(phone="+8613900002222")
    theirs = _identity(other, IdentityKind.PASSWORD)
    response = post_form(signed_in, "/account/security", f"/account/ways/{theirs.id}/unbind")
    assert response.status_code == 404


def test_sensitive_change_needs_reauthentication_within_5_minutes(
    app: Flask, signed_in: FlaskClient
) -> None:
    _age_sessions()
    response = signed_in.get("/account/password")
    assert response.status_code == 302
    assert "/account/reauth" in response.headers["Location"]
    wrong = post_form(signed_in, "/account/reauth?next=/account/password", **{
        "pw-csrf_token": "", "pw-password": "not it", "action": "pw",
        "next": "/account/password"})
    assert wrong.status_code == 200 and "not right" in wrong.get_data(as_text=True)
    right = post_form(signed_in, "/account/reauth?next=/account/password", **{
        "pw-csrf_token": "", "pw-password": PASSWORD, "action": "pw",
        "next": "/account/password"})
    assert right.status_code == 302 and right.headers["Location"] == "/account/password"
    assert signed_in.get("/account/password").status_code == 200


def test_reauthentication_by_sms_to_the_old_number(app: Flask, signed_in: FlaskClient) -> None:
    _age_sessions()
    sent = post_form(signed_in, "/account/reauth", **{"send-csrf_token": "", "action": "send"})
    assert sent.status_code == 200
    code = sms_code(app, PHONE)
    done = post_form(signed_in, "/account/reauth", **{
        "sms-csrf_token": "", "sms-code": code, "action": "sms", "next": "/account/phone"})
    assert done.status_code == 302 and done.headers["Location"] == "/account/phone"


def test_weak_password_refused_with_estimator_feedback_en_and_zh(
    app: Flask, signed_in: FlaskClient
) -> None:
    response = post_form(signed_in, "/account/password", password="password1",
                         confirm="password1")
    assert response.status_code == 400
    assert "This is a very common password." in response.get_data(as_text=True)
    signed_in.get("/locale/zh_CN")
    response = post_form(signed_in, "/account/password", password="13800138000a",
                         confirm="13800138000a")
    assert response.status_code == 400
    assert "请选择更强的密码" in response.get_data(as_text=True)


def test_password_change_ends_other_sessions_and_tokens(
    app: Flask, signed_in: FlaskClient, website: Any, user: Any
) -> None:
    other = app.test_client()
    login(other, PHONE)
    tokens = CodeFlow(other, website[0], website[1]).tokens(scope="openid offline_access")
    new = "blue-kettle-77-orbit"
    response = post_form(signed_in, "/account/password", password=new, confirm=new)
    assert response.status_code == 303
    assert signed_in.get("/account/sessions").status_code == 200  # this browser goes on
    assert other.get("/account/sessions").status_code == 302
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert other.get("/oauth/userinfo", headers=bearer).status_code == 401
    fresh = app.test_client()
    assert login(fresh, PHONE, new).status_code == 302
    assert login(app.test_client(), PHONE, PASSWORD).status_code == 200  # old one refused


def test_change_phone_by_sms_to_new_number(app: Flask, signed_in: FlaskClient,
                                           user: Any) -> None:
    response = post_form(signed_in, "/account/phone", phone="139 1234 5678")
    assert response.status_code == 303
    wrong = post_form(signed_in, "/account/phone/confirm", code="000000")
    assert "not right" in wrong.get_data(as_text=True)
    code = sms_code(app, NEW_PHONE)
    response = post_form(signed_in, "/account/phone/confirm", code=code)
    assert response.status_code == 303
    assert find_account(IdentityKind.PHONE, NEW_PHONE).id == user.id
    assert find_account(IdentityKind.PHONE, PHONE) is None  # the old number no longer names it
    assert login(app.test_client(), PHONE).status_code == 200
    assert login(app.test_client(), NEW_PHONE).status_code == 302
    change = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "phone.change")).one()
    assert change.details["new"] == NEW_PHONE


def test_change_phone_to_a_number_of_another_account_is_refused(
    app: Flask, signed_in: FlaskClient, make_user: Any, user: Any
) -> None:
    make_user(phone=NEW_PHONE)
    post_form(signed_in, "/account/phone", phone=NEW_PHONE)
    response = post_form(signed_in, "/account/phone/confirm", code=sms_code(app, NEW_PHONE))
    assert response.status_code == 303
    page = signed_in.get("/account/phone").get_data(as_text=True)
    assert "belongs to another account" in page
    assert find_account(IdentityKind.PHONE, PHONE).id == user.id


def test_change_phone_without_recent_auth_is_sent_to_reauth(
    app: Flask, signed_in: FlaskClient
) -> None:
    _age_sessions()
    page = signed_in.get("/account/security")
    from tests.conftest import csrf_token

    response = signed_in.post("/account/phone", data={
        "phone": NEW_PHONE, "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 302 and "/account/reauth" in response.headers["Location"]
    assert app.extensions["idp_sms"].last_code(NEW_PHONE) is None


def test_account_centre_forms_need_csrf(app: Flask, signed_in: FlaskClient) -> None:
    response = signed_in.post("/account/sessions/end-others", data={})
    assert response.status_code == 400


def test_very_long_password_is_estimated_not_a_500(app: Flask, signed_in: FlaskClient) -> None:
    long_one = "orbit-kettle-" * 40  # 520 characters: past zxcvbn's 72
    response = post_form(signed_in, "/account/password", password=long_one, confirm=long_one)
    assert response.status_code == 303
