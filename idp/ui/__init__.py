"""What every page shares and no domain owns: how messages reach assistive technology, and how
static files reach a slow phone (content-hashed URLs, long-lived caching, compression)."""

from __future__ import annotations

from flask import Flask

from idp.ui import assets, messages


def init_app(app: Flask) -> None:
    messages.init_app(app)
    assets.init_app(app)
