"""Flask's signed session cookie, with its signer built once per key rather than per request
(`SecureCookieSessionInterface` makes a new serializer, and so new HMAC key derivations, for
every request: ~0.05 ms even of a request that carries no cookie — bench/pipeline.py), and a
cookie verified once per process rather than on every request that carries it.

A cookie's verification (its HMAC, then the tagged JSON) has one answer per cookie and key; only
its age changes. So the content of a cookie whose values are all immutable (the signed-in
browser's `{"idp_sid": …, "_permanent": True}`, a CSRF token) is kept, bounded, by the exact
cookie string, and its age checked on every use as itsdangerous checks it. A new key empties
the cache; a cookie holding a dict or a list is verified every time (its content is copied into
each request's session, which may change it)."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

VERIFIED_COOKIES = 4096  # at most this many cookies kept; then the cache starts again
IMMUTABLE = (str, int, float, bool, bytes, type(None))


class CachedSignerSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._cached: tuple[Any, URLSafeTimedSerializer | None] | None = None
        # {cookie: (signed at, Unix seconds; its content)}
        self._verified: dict[str, tuple[int, dict[str, Any]]] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = self._cached
        if cached is None or cached[0] != keys:
            self._verified = {}
            cached = self._cached = (keys, super().get_signing_serializer(app))
        return cached[1]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        verified = self._verified
        known = verified.get(value)
        if known is not None:
            age = int(time.time()) - known[0]
            if 0 <= age <= max_age:  # itsdangerous' SignatureExpired otherwise
                return self.session_class(known[1])
            verified.pop(value, None)
            return self.session_class()
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(isinstance(item, IMMUTABLE) for item in data.values()):
            if len(verified) >= VERIFIED_COOKIES:
                verified.clear()
            verified[value] = (int(signed_at.timestamp()), data)
        return self.session_class(data)
