"""The dashboard: figures a person reads at a glance, as server-drawn SVG charts."""

from __future__ import annotations

from typing import Any

from flask import render_template

from idp.admin import charts
from idp.admin.blueprint import bp
from idp.admin.dashboard import build_dashboard


@bp.get("/")
def dashboard() -> Any:
    return render_template("admin/dashboard.html", board=build_dashboard(), charts=charts)
