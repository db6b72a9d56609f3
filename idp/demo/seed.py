"""Seeding the demo: an admin, two demo WeChat apps, a website client and a mini-program client.

Idempotent: every object is looked up before it is created, so a second start changes nothing.
The demo website's credentials live in `instance/demo.json` (mode 0600): the database keeps only a
digest of the client secret, and the demo relying party needs the secret itself at every start.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from idp.accounts.seed import create_password_user
from idp.extensions import db
from idp.identity.accounts import find_identity
from idp.identity.models import IdentityKind
from idp.identity.phones import normalize_phone
from idp.oidc.clients import create_client, rotate_client_secret
from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.oidc.models import Client
from idp.wechat.apps import app_secret, create_wechat_app
from idp.wechat.models import WeChatApp, WeChatAppKind

DEFAULT_RP_URL = "http://127.0.0.1:5002"
CREDENTIALS_FILE = "demo.json"

ADMIN_PHONE = "+8613900000000"
ADMIN_NAME = "Demo Admin"
WEBSITE_CLIENT_NAME = "Demo website"
MINIPROGRAM_CLIENT_NAME = "Demo mini-program"
MINIPROGRAM_APPID = "wxdemo0miniprogram"
WEBSITE_APPID = "wxdemo00000website"
# Signs in inside WeChat's browser: open the IdP with a WeChat User-Agent to see it.
OFFICIAL_ACCOUNT_APPID = "wxdemo0officialacct"
WEBSITE_SCOPE = "openid profile phone email wechat offline_access"
MINIPROGRAM_SCOPE = "openid profile phone wechat offline_access"


@dataclass(frozen=True)
class DemoCredentials:
    """What the demo relying party needs to start; kept in `instance/demo.json`."""

    website_client_id: str
    website_client_secret: str
    miniprogram_client_id: str
    miniprogram_appid: str
    website_appid: str
    rp_url: str
    rp_secret_key: str


@dataclass(frozen=True)
class DemoSeed:
    credentials: DemoCredentials
    # Set only when this call created the admin: the password is shown once and kept nowhere.
    admin_password: str | None
    admin_phone: str = ADMIN_PHONE

    @property
    def first_start(self) -> bool:
        return self.admin_password is not None


@dataclass(frozen=True)
class DemoWeChatApp:
    appid: str
    secret: str
    kind: str


def seed_demo(instance_path: str | Path, rp_url: str = DEFAULT_RP_URL) -> DemoSeed:
    """Create whatever part of the demo is missing. Needs an app context."""
    path = Path(instance_path) / CREDENTIALS_FILE
    saved = _load(path)
    _ensure_wechat_app(WeChatAppKind.MINIPROGRAM, MINIPROGRAM_APPID, "Demo mini-program")
    _ensure_wechat_app(WeChatAppKind.WEBSITE, WEBSITE_APPID, "Demo website login")
    _ensure_wechat_app(
        WeChatAppKind.OFFICIAL_ACCOUNT, OFFICIAL_ACCOUNT_APPID, "Demo Official Account"
    )
    admin_password = _ensure_admin()
    website_id, website_secret = _ensure_website_client(rp_url, saved)
    credentials = DemoCredentials(
        website_client_id=website_id,
        website_client_secret=website_secret,
        miniprogram_client_id=_ensure_miniprogram_client(),
        miniprogram_appid=MINIPROGRAM_APPID,
        website_appid=WEBSITE_APPID,
        rp_url=rp_url,
        rp_secret_key=saved.get("rp_secret_key") or secrets.token_urlsafe(32),
    )
    if asdict(credentials) != saved:
        _save(path, asdict(credentials))
    return DemoSeed(credentials=credentials, admin_password=admin_password)


def demo_wechat_apps() -> list[DemoWeChatApp]:
    """The demo's WeChat apps with their secrets, to register in the (in-memory) fake WeChat."""
    rows = db.session.scalars(
        select(WeChatApp).where(
            WeChatApp.appid.in_([MINIPROGRAM_APPID, WEBSITE_APPID, OFFICIAL_ACCOUNT_APPID])
        )
    )
    return [DemoWeChatApp(row.appid, app_secret(row), row.kind) for row in rows]


def _ensure_wechat_app(kind: str, appid: str, name: str) -> None:
    if db.session.get(WeChatApp, appid) is None:
        create_wechat_app(kind, appid, secrets.token_hex(16), name=name)


def _ensure_admin() -> str | None:
    if find_identity(IdentityKind.PHONE, normalize_phone(ADMIN_PHONE)) is not None:
        return None
    password = secrets.token_urlsafe(12)
    admin = create_password_user(ADMIN_PHONE, password, admin=True, name=ADMIN_NAME)
    _demo_admin_roles(admin)
    return password


def _demo_admin_roles(admin: Any) -> None:
    """The demo has one operator: beside `security` (every bootstrap admin's role) it holds the
    other roles too, unless the separation is strict. Four-eyes still asks for a second admin."""
    from idp.identity.audit import Actor
    from idp.staff.permissions import Role
    from idp.staff.roles import RoleRefused, grant_role

    for role in (Role.SUPPORT, Role.IDENTITY, Role.AUDITOR):
        try:
            grant_role(admin, role, Actor.system("demo"), reason="demo operator")
        except RoleRefused:
            return
    db.session.commit()


def _client_named(name: str) -> Client | None:
    return db.session.scalars(
        select(Client).where(Client.name == name).order_by(Client.created_at)
    ).first()


def _ensure_website_client(rp_url: str, saved: dict[str, Any]) -> tuple[str, str]:
    client = _client_named(WEBSITE_CLIENT_NAME)
    if client is None:
        client, secret = create_client(
            name=WEBSITE_CLIENT_NAME,
            redirect_uris=[f"{rp_url}/callback"],
            post_logout_redirect_uris=[f"{rp_url}/"],
            grant_types=["authorization_code", "refresh_token"],
            scope=WEBSITE_SCOPE,
            wechat_appid=WEBSITE_APPID,
            first_party=True,
        )
        assert secret is not None
        return client.client_id, secret
    if saved.get("website_client_id") == client.client_id and saved.get("website_client_secret"):
        return client.client_id, saved["website_client_secret"]
    # The credentials file was lost: the database only has a digest, so issue a new secret.
    return client.client_id, rotate_client_secret(client)


def _ensure_miniprogram_client() -> str:
    client = _client_named(MINIPROGRAM_CLIENT_NAME)
    if client is None:
        client, _ = create_client(
            name=MINIPROGRAM_CLIENT_NAME,
            public=True,
            grant_types=[TOKEN_EXCHANGE, "refresh_token"],
            scope=MINIPROGRAM_SCOPE,
            wechat_appid=MINIPROGRAM_APPID,
            first_party=True,
        )
    return client.client_id


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, data: dict[str, Any]) -> None:
    """Written to a temporary file created 0600, then renamed over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(temporary, path)
