"""The IdP's Flask class (`idp.flask_app`): Flask's answer to `ensure_sync`, asked once per
function rather than on every request."""

from __future__ import annotations

from typing import Any
from unittest import mock


def test_a_hook_is_inspected_once(app: Any, client: Any) -> None:
    client.get("/healthz")
    with mock.patch("flask.app.iscoroutinefunction", side_effect=AssertionError) as inspect:
        assert client.get("/healthz").status_code == 200
    assert inspect.call_count == 0


def test_the_answer_is_flasks(app: Any) -> None:
    def view() -> str:
        return "plain"

    assert app.ensure_sync(view) is view
    assert app.ensure_sync(view) is view
