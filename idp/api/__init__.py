"""The management API (`/api/v1`, CONTRACT §8): the company's back-end services read and change
accounts through the identity engine, with OAuth 2 client-credentials tokens whose scopes an
admin granted to the client. Errors are RFC 9457 problem documents; the OpenAPI 3.1 document is
served at `/api/v1/openapi.json`."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.api import accounts, events, merges, openapi  # noqa: F401 - their routes join the blueprint
    from idp.api.blueprint import app_level_problem, bp
    from idp.extensions import csrf

    csrf.exempt(bp)  # bearer tokens, no cookies: nothing to forge
    app.register_blueprint(bp)
    app.extensions.setdefault("idp_error_renderers", {})["/api/v1"] = app_level_problem
