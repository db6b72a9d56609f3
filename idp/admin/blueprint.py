"""The `admin` blueprint; every request passes `access.require_admin` first."""

from __future__ import annotations

from flask import Blueprint, g

from idp.admin import access
from idp.identity.audit import Actor
from idp.identity.models import Account

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(access.require_admin)


def current_admin() -> Account:
    return g.admin


def admin_actor() -> Actor:
    return Actor.admin(g.admin.id)


@bp.app_template_filter("short_id")
def short_id(value: str | None) -> str:
    return (value or "")[:8]
