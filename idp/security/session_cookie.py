"""Flask's signed session cookie, with its signer built once per key rather than per request
(`SecureCookieSessionInterface` makes a new serializer, and so new HMAC key derivations, for
every request: ~0.05 ms even of a request that carries no cookie — bench/pipeline.py)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class CachedSignerSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._cached: tuple[Any, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = self._cached
        if cached is None or cached[0] != keys:
            cached = self._cached = (keys, super().get_signing_serializer(app))
        return cached[1]
