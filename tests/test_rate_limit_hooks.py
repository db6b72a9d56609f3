"""Where the rate limiter runs (idp/__init__.py `_limit_in_decorators_only`)."""

from __future__ import annotations

from typing import Any


def test_rate_limits_are_checked_only_where_declared(app: Any) -> None:
    """The token endpoint's limit is its decorator's; a route without a limit costs the limiter
    nothing (Flask-Limiter's before_request hook is not installed: no default limits)."""
    from idp.extensions import limiter

    assert limiter._check_request_limit not in app.before_request_funcs.get(None, [])
