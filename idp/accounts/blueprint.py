"""The `accounts` blueprint: sign-in, registration and reset pages (`views.py`) and the SMS
sign-in pages (`sms_views.py`) both add their routes to it, so neither imports the other to
find it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("accounts", __name__)
