"""The `state` of WeChat's redirect handshakes (website QR connect, Official Account web
authorization), for sign-in and for binding from the account centre alike.

Each flow keeps its state in the Flask session (a signed cookie) under its own key, so a state
is bound to this browser and to the flow that issued it: a sign-in's state presented at the
bind callback finds nothing to match there, and the other way round. A state is spent on its
first presentation, right or wrong (one use), and compared in constant time.

WeChat documents `state` as `a-zA-Z0-9`, at most 128 bytes: a state is 32 of those characters
(190 bits), so WeChat hands back exactly what it was given.
"""

from __future__ import annotations

import hmac
import secrets
import string
import time
from typing import Any

from flask import session

STATE_ALPHABET = string.ascii_letters + string.digits
STATE_LENGTH = 32


class StateRefused(Exception):
    """No state was issued to this browser for this flow, it expired, or it does not match."""


def issue_state(key: str, **remembered: Any) -> str:
    """A fresh state for the flow stored under `key`, with what its callback needs to know
    (JSON-serialisable values); replaces any earlier state of that flow."""
    state = new_state()
    session[key] = {**remembered, "state": state, "at": int(time.time())}
    return state


def new_state() -> str:
    """32 characters of [A-Za-z0-9], WeChat's documented alphabet for `state`."""
    return "".join(secrets.choice(STATE_ALPHABET) for _ in range(STATE_LENGTH))


def take_state(key: str, presented: str | None, ttl: int) -> dict[str, Any]:
    """Checks and spends the flow's state; returns what `issue_state` remembered with it.
    Raises StateRefused."""
    issued = session.pop(key, None)
    if not isinstance(issued, dict) or not isinstance(presented, str):
        raise StateRefused()
    expected = str(issued.get("state", ""))
    try:
        fresh = time.time() - int(issued.get("at", 0)) <= ttl
    except (TypeError, ValueError):
        raise StateRefused() from None
    if not (expected and fresh and hmac.compare_digest(expected.encode(), presented.encode())):
        raise StateRefused()
    return issued
