"""Werkzeug's URL builders, compiled once per test process instead of once per app.

Every `app` fixture builds an app, and building one compiles a URL builder per route (Python
source generated through `ast` and `compile`, about 50 ms of the ~65 ms `create_app` takes). A
builder is a pure function of its rule's parsed parts (it receives the rule as an argument), so
the suite's ~2,500 apps can share them. Tests only: production builds one app per process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing.rules import Rule

_compile_builder = Rule._compile_builder
_builders: dict[tuple[Any, ...], Callable[..., tuple[str, str]]] = {}


def _shared_builder(self: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
    defaults = self.defaults or {}
    # What the generated code depends on: the rule's parts, the names of its defaults, and the
    # defaults that are folded into the URL as constants.
    key = (
        append_unknown,
        self.rule,
        tuple(self._trace),
        tuple(defaults),
        tuple(
            self._converters[part].to_url(defaults[part])
            for dynamic, part in self._trace
            if dynamic and part in defaults
        ),
    )
    builder = _builders.get(key)
    if builder is None:
        builder = _builders[key] = _compile_builder(self, append_unknown)
    return builder


def share_url_builders() -> None:
    Rule._compile_builder = _shared_builder  # type: ignore[method-assign]
