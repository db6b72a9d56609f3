# ruff: noqa: F811 - the WeChat fixtures are imported from tests/wechat_login/conftest.py
"""Binding WeChat from the account centre through the real QR-connect handshake with the fake
WeChat on loopback: a new WeChat joins; one held by another account is never moved silently —
the merge is offered with a preview and goes through the engine's rules."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.extensions import db
from idp.identity.accounts import create_account, find_account, find_identity, link_identity
from idp.identity.audit import Actor
from idp.identity.models import Account, AccountStatus, IdentityKind, MergeRecord
from idp.wechat.fake import FakeWeChatControl
from tests.account_centre.conftest import post_form, start_wechat_bind
from tests.wechat_login.conftest import (  # noqa: F401 - fixtures
    WEB_APPID,
    app_config,
    control,
    wechat_apps,
)


def _scan(browser: FlaskClient) -> FlaskClient:
    start = start_wechat_bind(browser)
    assert start.status_code == 303, start.status_code
    answer = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    location = urlsplit(answer.headers["Location"])
    assert location.path == "/account/ways/wechat/callback"
    return browser.get(f"{location.path}?{location.query}")


def test_bind_new_wechat_then_unbind(app: Flask, signed_in: FlaskClient, user: Any,
                                     control: FakeWeChatControl, wechat_apps: None) -> None:
    who = control.next_qr_user(WEB_APPID, user="alice-wx", unionid="u-alice")
    response = _scan(signed_in)
    assert response.status_code == 302
    account = find_account(IdentityKind.WECHAT_OPENID, who.openid, WEB_APPID)
    assert account is not None and account.id == user.id
    page = signed_in.get("/account/security").get_data(as_text=True)
    assert "WeChat added" in page and "Website login" in page
    identity = find_identity(IdentityKind.WECHAT_OPENID, who.openid, WEB_APPID)
    done = post_form(signed_in, "/account/security", f"/account/ways/{identity.id}/unbind")
    assert done.status_code == 303
    assert find_account(IdentityKind.WECHAT_OPENID, who.openid, WEB_APPID) is None


def test_wechat_of_another_account_offers_a_merge_with_preview(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    wechat_apps: None,
) -> None:
    actor = Actor.system("test")
    other = create_account(actor, "miniprogram")
    link_identity(other, IdentityKind.WECHAT_UNIONID, "u-bob", actor, verified=True,
                  proof="wechat_login")
    db.session.commit()
    control.next_qr_user(WEB_APPID, user="bob-wx", unionid="u-bob")
    response = _scan(signed_in)
    assert response.status_code == 302 and response.headers["Location"].endswith(
        "/account/ways/wechat/merge")
    preview = signed_in.get("/account/ways/wechat/merge").get_data(as_text=True)
    assert user.id in preview  # the older account stays
    assert "WeChat" in preview and "Merge the two accounts" in preview
    assert db.session.get(Account, other.id).status == AccountStatus.ACTIVE  # nothing moved yet
    merged = post_form(signed_in, "/account/ways/wechat/merge")
    assert merged.status_code == 303
    db.session.expire_all()
    assert db.session.get(Account, other.id).status == AccountStatus.MERGED
    record = db.session.scalars(select(MergeRecord)).one()
    assert record.survivor_id == user.id and record.rule == "same_wechat_unionid"
    assert signed_in.get("/account/security").status_code == 200


def test_reauthentication_by_signing_in_with_wechat_again(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    wechat_apps: None,
) -> None:
    from datetime import timedelta

    from idp.identity.models import LoginSession

    control.next_qr_user(WEB_APPID, user="carol-wx", unionid="u-carol")
    _scan(signed_in)  # bind WeChat first
    for row in db.session.scalars(select(LoginSession)):
        row.auth_time = row.auth_time - timedelta(minutes=10)
    db.session.commit()
    page = signed_in.get("/account/reauth?next=/account/password").get_data(as_text=True)
    assert 'id="reauth-wechat"' in page
    control.next_qr_user(WEB_APPID, user="carol-wx", unionid="u-carol")
    start = signed_in.get("/login/wechat?next=/account/password")
    answer = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    location = urlsplit(answer.headers["Location"])
    back = signed_in.get(f"{location.path}?{location.query}")
    assert back.status_code == 302 and back.headers["Location"] == "/account/password"
    assert signed_in.get("/account/password").status_code == 200  # fresh now
