"""The user's own account centre: ways in, phone and password, sessions and connected apps,
second factors (TOTP, passkeys, recovery codes) and account deletion (注销).

Views here are thin: they check who is asking and how recently they proved it, then call the
identity engine (`idp.identity`), which decides and audits. Nothing here moves identities.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.account_centre import (  # noqa: F401 - each module adds its views to the blueprint
        api,
        apps,
        deletion,
        my_data,
        passkeys,
        password,
        phone,
        reauth,
        second_factor,
        sessions,
        sign_out_elsewhere,
        ways,
        wechat_bind,
        wechat_merge,
    )
    from idp.account_centre.blueprint import bp
    from idp.account_centre.gate import init_gate

    app.register_blueprint(bp)
    init_gate(app)
