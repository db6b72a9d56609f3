"""The id that ties an answer to its log lines and audit rows (docs/DEPLOYMENT.md)."""

from __future__ import annotations

import secrets
from typing import Any


def request_id_from(environ: dict[str, Any], proxies: int) -> str:
    """The proxy's `X-Request-Id` when it looks like one, else a new random one. Trusted only
    behind a configured proxy (`IDP_PROXY_FIX` > 0, which sets it itself: docs/DEPLOYMENT.md):
    without one, any caller could write the request id of the audit trail and the logs."""
    incoming = environ.get("HTTP_X_REQUEST_ID", "") if proxies > 0 else ""
    if isinstance(incoming, str) and 8 <= len(incoming) <= 64 and incoming.isprintable():
        return incoming
    return secrets.token_hex(8)
