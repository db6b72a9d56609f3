"""The blueprint of WeChat sign-in; its routes live in `phone_views` and `website_views`."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("wechat_login", __name__)
