"""Admin fixtures: an admin signed in with TOTP enrolled, and helpers that post forms the way
the pages do (fetching each page's CSRF token first)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.accounts import create_account, link_identity, set_claim
from idp.identity.audit import Actor
from idp.identity.models import Account, AuditEvent, IdentityKind
from idp.models_base import utcnow
from idp.staff.permissions import Role
from idp.staff.roles import grant_role
from tests.conftest import csrf_token, login

ADMIN_PHONE = "+8613900000001"
MINI_APPID = "wxmini00000000admin"
WEB_APPID = "wxweb000000000admin"


@dataclass
class AdminBrowser:
    browser: FlaskClient
    account: Account
    secret: str

    def code(self, steps_ahead: int = 0) -> str:
        """A valid code; `steps_ahead` picks a neighbouring time step, since each is single-use."""
        return pyotp.TOTP(self.secret).at(time.time() + 30 * steps_ahead)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.browser.get(url, **kwargs)

    def submit(self, page_url: str, data: dict[str, Any] | None = None,
               action: str | None = None) -> Any:
        """GET the page, then POST its form (to `action`, default the page) with its token."""
        page = self.browser.get(page_url)
        assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
        form = dict(data or {})
        form["csrf_token"] = csrf_token(page.get_data(as_text=True))
        return self.browser.post(action or page_url, data=form)


def enrol_totp(browser: FlaskClient) -> str:
    page = browser.get("/admin/totp/enrol")
    html = page.get_data(as_text=True)
    shown = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', html)
    assert shown, html[:2000]
    secret = shown.group(1).replace(" ", "")  # shown in groups of four
    response = browser.post(
        "/admin/totp/enrol",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_token(html),
              "next": "/admin/"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return secret


@pytest.fixture
def admin_account(make_user: Any) -> Account:
    """The bootstrap admin (`security`) also given the other roles, as a one-person team under
    the default relaxed separation: the page tests exercise the pages, test_roles the policy."""
    account = make_user(phone=ADMIN_PHONE, name="Ada Admin", admin=True)
    grant_roles(account, *Role)
    return account


def grant_roles(account: Account, *roles: str) -> None:
    for role in roles:
        grant_role(account, role, Actor.system("test"))
    db.session.commit()


@pytest.fixture
def admin(app: Any, client: FlaskClient, admin_account: Account) -> AdminBrowser:
    # A one-person team cannot have a second pair of eyes: the page tests carry merges, undos
    # and moves out at once; tests/admin/test_four_eyes.py runs the default (all three wait).
    app.config["IDP_ADMIN_FOUR_EYES"] = ""
    login(client, ADMIN_PHONE)
    secret = enrol_totp(client)
    return AdminBrowser(client, admin_account, secret)


@pytest.fixture
def wechat_apps(app: Any) -> None:
    from idp.wechat.apps import create_wechat_app

    create_wechat_app("miniprogram", MINI_APPID, "mini-secret-0001", "Mini")
    create_wechat_app("website", WEB_APPID, "web-secret-0002", "Web")


@pytest.fixture
def mini_user(app: Any) -> Any:
    """An account created by a mini-program login (engine API, as the WeChat adapter calls it)."""

    def factory(openid: str, unionid: str | None = None, name: str | None = None,
                days_old: float = 0) -> Account:
        actor = Actor.system("test")
        account = create_account(actor, "miniprogram")
        link_identity(account, IdentityKind.WECHAT_OPENID, openid, actor, namespace=MINI_APPID,
                      verified=True, proof="wechat_login")
        if unionid:
            link_identity(account, IdentityKind.WECHAT_UNIONID, unionid, actor, verified=True,
                          proof="wechat_login")
        if name:
            set_claim(account, "nickname", name, "wechat")
        if days_old:
            account.created_at = utcnow() - timedelta(days=days_old)
        db.session.commit()
        return account

    return factory


def age(account: Account, days: float) -> Account:
    account.created_at = utcnow() - timedelta(days=days)
    db.session.commit()
    return account


def audit_of(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    ))


def text_of(response: Any) -> str:
    return unescape(response.get_data(as_text=True))


def flashes(browser: FlaskClient) -> str:
    """The next page's flash messages (following a redirect by hand)."""
    return text_of(browser.get("/admin/accounts"))
