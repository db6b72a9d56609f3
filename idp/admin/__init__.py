"""The admin web UI at /admin/: it calls the other domains' services and owns no models.

Every page needs an admin account signed in through the IdP's own login, with a second factor
(TOTP) enrolled and passed in this IdP session (`access.py`). Nothing imports this package.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.admin import views  # noqa: F401 - registers the routes on the blueprint
    from idp.admin.blueprint import bp

    app.register_blueprint(bp)
