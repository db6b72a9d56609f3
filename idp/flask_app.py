"""The IdP's Flask class: Flask, with the one per-request cost that depends on nothing of the
request answered once per function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

# More distinct hooks and views than the IdP has; past it, functions are checked every time.
KEPT_FUNCTIONS = 1024


class IdentityProviderApp(Flask):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_of: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's answer (the function, or an `async def` one wrapped to run), kept per
        function: Flask asks it for every hook and view of every request (17 times for a
        signed-in page), and each time inspects the function's code flags (~5% of a request)."""
        try:
            return self._sync_of[func]
        except KeyError:
            sync = super().ensure_sync(func)
            if len(self._sync_of) < KEPT_FUNCTIONS:
                self._sync_of[func] = sync
            return sync
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)
