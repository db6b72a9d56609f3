"""The `admin` blueprint; every request passes `access.require_admin` first."""

from __future__ import annotations

from flask import Blueprint, g

from idp.admin import access, four_eyes
from idp.identity.audit import Actor
from idp.identity.masking import mask_field
from idp.identity.models import Account

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(access.require_admin)
bp.add_app_template_global(access.admin_may, "admin_may")
bp.add_app_template_global(four_eyes.needs_second_admin, "four_eyes")
bp.add_app_template_filter(lambda value, field: mask_field(field, value), "masked")


def current_admin() -> Account:
    return g.admin


def admin_actor() -> Actor:
    return Actor.admin(g.admin.id)


@bp.app_template_filter("short_id")
def short_id(value: str | None) -> str:
    return (value or "")[:8]
