"""The id that ties an answer to its log lines and audit rows (docs/DEPLOYMENT.md)."""

from __future__ import annotations

import secrets
from typing import Any


def request_id_from(environ: dict[str, Any]) -> str:
    """The caller's `X-Request-Id` when it looks like one, else a new random one."""
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    if isinstance(incoming, str) and 8 <= len(incoming) <= 64 and incoming.isprintable():
        return incoming
    return secrets.token_hex(8)
