"""Authlib's transport check (RFC 6749 §3.1: TLS, loopback excepted) answered once per origin.

Authlib checks the URI of every request it is handed (`InsecureTransportError.check`), which
parses the whole URL each time — and building that URL is itself the costliest part of reading
a request (werkzeug's `url` re-encodes every part). The answer depends only on the scheme and the
host (and on the environment variable that relaxes it): it is worked out per origin, and Authlib
is handed a stand-in URI known to pass. An origin that fails gets the request's real URL, so
Authlib refuses it in its own words."""

from __future__ import annotations

import functools
import os

from authlib.common.security import is_secure_transport

CHECKED = "https://checked.invalid/"


@functools.lru_cache(maxsize=64)
def _origin_is_secure(origin: str) -> bool:
    return bool(is_secure_transport(origin + "/"))


def secure_origin(origin: str) -> bool:
    return bool(os.environ.get("AUTHLIB_INSECURE_TRANSPORT")) or _origin_is_secure(origin)
