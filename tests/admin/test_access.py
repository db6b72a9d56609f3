"""Who gets in: admins only, with TOTP enrolled and passed in this IdP session."""

from __future__ import annotations

from typing import Any

import pyotp
import sqlalchemy as sa
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.models import Account
from tests.admin.conftest import ADMIN_PHONE, AdminBrowser, audit_of, enrol_totp, text_of
from tests.conftest import csrf_token, login


def test_anonymous_is_sent_to_the_idp_login(client: FlaskClient) -> None:
    response = client.get("/admin/accounts?q=x")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/admin/accounts")


def test_a_signed_in_non_admin_gets_403(client: FlaskClient, make_user: Any) -> None:
    make_user(phone="+8613800000011")
    login(client, "+8613800000011")
    assert client.get("/admin/").status_code == 403
    assert client.post("/admin/keys/rotate", data={}).status_code in (400, 403)


def test_login_then_enrolment_is_required_before_any_page(
    client: FlaskClient, admin_account: Account
) -> None:
    response = login(client, ADMIN_PHONE, next_url="/admin/")
    assert response.headers["Location"] == "/admin/"
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/totp/enrol")
    page = client.get("/admin/totp/enrol")
    html = page.get_data(as_text=True)
    assert '<svg class="qr"' in html and "style=" not in html  # CSP: no inline style
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_a_wrong_enrolment_code_is_refused_and_nothing_is_stored(
    client: FlaskClient, admin_account: Account
) -> None:
    login(client, ADMIN_PHONE)
    html = client.get("/admin/totp/enrol").get_data(as_text=True)
    response = client.post("/admin/totp/enrol", data={"code": "000000",
                                                      "csrf_token": csrf_token(html)})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Account, admin_account.id).totp_secret_encrypted is None
    assert client.get("/admin/").status_code == 302


def test_enrolment_stores_the_secret_encrypted_and_opens_the_pages(
    admin: AdminBrowser, app: Any
) -> None:
    db.session.expire_all()
    stored = db.session.get(Account, admin.account.id).totp_secret_encrypted
    assert stored and admin.secret not in stored
    box = app.extensions["idp_secret_box"]
    assert box.decrypt(stored, context=f"admin-totp:{admin.account.id}") == admin.secret
    assert admin.get("/admin/").status_code == 200
    assert [e.actor_id for e in audit_of("admin.totp_enrol")] == [admin.account.id]


def test_every_new_session_asks_for_a_code_again(admin: AdminBrowser) -> None:
    browser = admin.browser
    login(browser, ADMIN_PHONE)  # a new IdP session: the mark of the old one does not count
    response = browser.get("/admin/accounts")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/totp?next=/admin/accounts")
    page = browser.get("/admin/totp?next=/admin/accounts")
    response = browser.post("/admin/totp", data={
        "code": admin.code(steps_ahead=1), "next": "/admin/accounts",
        "csrf_token": csrf_token(page.get_data(as_text=True)),
    })
    assert response.headers["Location"] == "/admin/accounts"
    assert browser.get("/admin/accounts").status_code == 200
    assert [e.actor_id for e in audit_of("admin.second_factor")] == [admin.account.id]


def test_a_code_works_once(admin: AdminBrowser) -> None:
    browser = admin.browser
    code = admin.code(steps_ahead=1)
    for expected in (302, 400):
        login(browser, ADMIN_PHONE)
        page = browser.get("/admin/totp")
        response = browser.post("/admin/totp", data={
            "code": code, "csrf_token": csrf_token(page.get_data(as_text=True))})
        assert response.status_code == expected


def test_totp_attempts_are_throttled(admin: AdminBrowser, app: Any) -> None:
    app.config["IDP_THROTTLE_ENABLED"] = True
    browser = admin.browser
    login(browser, ADMIN_PHONE)
    token = csrf_token(browser.get("/admin/totp").get_data(as_text=True))
    statuses = [
        browser.post("/admin/totp", data={"code": "000000", "csrf_token": token}).status_code
        for _ in range(6)
    ]
    assert statuses == [400] * 5 + [429]
    # Even the right code waits out the lockout.
    response = browser.post("/admin/totp", data={"code": admin.code(1), "csrf_token": token})
    assert response.status_code == 429 and "Retry-After" in response.headers


def test_the_second_factor_dies_with_the_idp_session(admin: AdminBrowser) -> None:
    browser = admin.browser
    page = browser.get("/admin/")
    browser.post("/logout", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert browser.get("/admin/").headers["Location"].startswith("/login")


def test_a_post_without_csrf_token_is_refused(admin: AdminBrowser) -> None:
    response = admin.browser.post("/admin/keys/rotate", data={})
    assert response.status_code == 400
    assert audit_of("admin.keys_rotate") == []


def test_next_never_leaves_the_admin_ui(client: FlaskClient, admin_account: Account) -> None:
    login(client, ADMIN_PHONE)
    enrol_totp(client)
    login(client, ADMIN_PHONE)
    page = client.get("/admin/totp")
    secret = pyotp.TOTP(_secret_of(admin_account))
    response = client.post("/admin/totp", data={
        "code": secret.at(__import__("time").time() + 30), "next": "//evil.example/admin/",
        "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.headers["Location"] == "/admin/"


def _secret_of(account: Account) -> str:
    from flask import current_app

    db.session.expire_all()
    row = db.session.scalars(sa.select(Account).where(Account.id == account.id)).one()
    box = current_app.extensions["idp_secret_box"]
    return box.decrypt(row.totp_secret_encrypted or "", context=f"admin-totp:{account.id}")


def test_pages_render_in_chinese(admin: AdminBrowser) -> None:
    admin.browser.set_cookie("idp_locale", "zh_CN")
    html = text_of(admin.get("/admin/"))
    assert "仪表盘" in html and 'lang="zh-CN"' in html


# Arabic-Indic digits: `str.isdigit` says yes, but `hmac.compare_digest` refuses non-ASCII text.
NON_ASCII_DIGITS = "\u0661\u0662\u0663\u0664\u0665\u0666"


def test_a_code_of_non_ascii_digits_is_a_wrong_code_not_an_error__rfc4226_5_3(
    admin: AdminBrowser,
) -> None:
    """RFC 4226 §5.3: the code is a decimal number of ASCII digits; anything else is refused
    like a wrong code, at enrolment and at the second step (never a 500)."""
    browser = admin.browser
    login(browser, ADMIN_PHONE)
    token = csrf_token(browser.get("/admin/totp").get_data(as_text=True))
    response = browser.post("/admin/totp", data={"code": NON_ASCII_DIGITS, "csrf_token": token})
    assert response.status_code == 400
    db.session.execute(sa.update(Account).where(Account.id == admin.account.id)
                       .values(totp_secret_encrypted=None))
    db.session.commit()
    html = browser.get("/admin/totp/enrol").get_data(as_text=True)
    response = browser.post("/admin/totp/enrol", data={"code": NON_ASCII_DIGITS,
                                                       "csrf_token": csrf_token(html)})
    assert response.status_code == 400
