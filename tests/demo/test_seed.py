"""Seeding the demo happens once: a second start finds everything and creates nothing."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from idp.demo.run import print_banner
from idp.demo.seed import (
    CREDENTIALS_FILE,
    OFFICIAL_ACCOUNT_APPID,
    demo_wechat_apps,
    seed_demo,
)
from idp.extensions import db
from idp.identity.models import Account
from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.oidc.models import Client
from idp.wechat.models import WeChatApp

RP_URL = "http://127.0.0.1:5002"


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_seeding_twice_creates_one_admin_and_two_clients(app: Flask, tmp_path: Path) -> None:
    first = seed_demo(tmp_path, RP_URL)
    second = seed_demo(tmp_path, RP_URL)

    assert count(Account, Account.is_admin.is_(True)) == 1
    from idp.staff.roles import admin_holders

    [holder] = admin_holders()  # one operator holding every role (relaxed separation)
    assert holder.roles == ("support", "identity", "security", "auditor")
    assert count(Client) == 2
    assert count(WeChatApp) == 3  # mini-program, website, Official Account
    assert first.first_start and first.admin_password
    assert not second.first_start and second.admin_password is None
    assert second.credentials == first.credentials


def test_seeded_clients_match_the_demo(app: Flask, tmp_path: Path) -> None:
    credentials = seed_demo(tmp_path, RP_URL).credentials

    website = db.session.get(Client, credentials.website_client_id)
    miniprogram = db.session.get(Client, credentials.miniprogram_client_id)
    assert website is not None and miniprogram is not None
    assert website.redirect_uris == [f"{RP_URL}/callback"]
    assert website.post_logout_redirect_uris == [f"{RP_URL}/"]
    assert website.is_first_party and website.client_secret_digest
    assert set(website.scope.split()) == {
        "openid", "profile", "phone", "email", "wechat", "offline_access"
    }
    assert miniprogram.token_endpoint_auth_method == "none"
    assert miniprogram.client_secret_digest is None
    assert miniprogram.wechat_appid == credentials.miniprogram_appid
    assert set(miniprogram.grant_types) == {TOKEN_EXCHANGE, "refresh_token"}
    kinds = {wechat_app.appid: wechat_app.kind for wechat_app in demo_wechat_apps()}
    assert kinds == {
        credentials.miniprogram_appid: "miniprogram",
        credentials.website_appid: "website",
        OFFICIAL_ACCOUNT_APPID: "officialaccount",
    }


def test_credentials_file_is_private_and_survives_restarts(app: Flask, tmp_path: Path) -> None:
    credentials = seed_demo(tmp_path, RP_URL).credentials
    path = tmp_path / CREDENTIALS_FILE

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["website_client_secret"] == credentials.website_client_secret


def test_lost_credentials_file_rotates_the_secret_without_new_clients(
    app: Flask, tmp_path: Path
) -> None:
    before = seed_demo(tmp_path, RP_URL).credentials
    (tmp_path / CREDENTIALS_FILE).unlink()

    after = seed_demo(tmp_path, RP_URL).credentials

    assert count(Client) == 2
    assert after.website_client_id == before.website_client_id
    assert after.website_client_secret != before.website_client_secret
    website = db.session.get(Client, after.website_client_id)
    assert website is not None and website.check_client_secret(after.website_client_secret)


def test_banner_shows_the_admin_password_on_first_start_only(app: Flask, tmp_path: Path) -> None:
    first, second = seed_demo(tmp_path, RP_URL), seed_demo(tmp_path, RP_URL)
    assert first.admin_password
    shown = io.StringIO()
    print_banner("http://127.0.0.1:5000", "http://127.0.0.1:5001", first, out=shown)
    print_banner("http://127.0.0.1:5000", "http://127.0.0.1:5001", second, out=shown)

    assert shown.getvalue().count(first.admin_password) == 1
    assert shown.getvalue().count("http://127.0.0.1:5002") == 4
