"""The request and answer of a hot endpoint: parsed straight from the WSGI environ.

Only what the endpoints read is parsed, and only once: the method, the path, a few headers,
the query string and an `application/x-www-form-urlencoded` body. The same refusals as the
Flask pipeline apply: a NUL anywhere (`idp/input_guard.py`), a body over the app's
`MAX_CONTENT_LENGTH` (413), a parameter sent twice (RFC 6749 §3.1, §3.2)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from idp.input_guard import NUL, REFUSAL

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


class HotError(Exception):
    """An answer decided before the endpoint's own work: OAuth error JSON (RFC 6749 §5.2)."""

    def __init__(self, status: int, error: str, description: str,
                 headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or []


class HotRequest:
    __slots__ = ("environ", "method", "path", "request_id", "_form", "_args", "max_body")

    def __init__(self, environ: dict[str, Any], request_id: str, max_body: int) -> None:
        self.environ = environ
        self.method: str = environ.get("REQUEST_METHOD", "GET")
        self.path: str = environ.get("PATH_INFO", "")
        self.request_id = request_id
        self.max_body = max_body
        self._form: dict[str, str] | None = None
        self._args: dict[str, str] | None = None

    def header(self, name: str) -> str | None:
        """A request header by its WSGI key (`HTTP_AUTHORIZATION`, `CONTENT_TYPE`)."""
        value = self.environ.get(name)
        return value if isinstance(value, str) else None

    @property
    def headers(self) -> dict[str, str]:
        """All headers by their HTTP names, for Authlib's client authentication."""
        found = {}
        for key, value in self.environ.items():
            if key.startswith("HTTP_"):
                found[key[5:].replace("_", "-").title()] = value
        if "CONTENT_TYPE" in self.environ:
            found["Content-Type"] = self.environ["CONTENT_TYPE"]
        return found

    @property
    def remote_addr(self) -> str | None:
        """The caller's address (behind IDP_PROXY_FIX, the proxy's X-Forwarded-For already
        applied: the proxy fix wraps the dispatcher)."""
        value = self.environ.get("REMOTE_ADDR")
        return value if isinstance(value, str) else None

    @property
    def user_agent(self) -> str:
        return self.header("HTTP_USER_AGENT") or ""

    @property
    def url(self) -> str:
        environ = self.environ
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "localhost")
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}{self.path}"

    @property
    def args(self) -> dict[str, str]:
        if self._args is None:
            self._args = _pairs(self.environ.get("QUERY_STRING", ""), unique=False)
        return self._args

    @property
    def form(self) -> dict[str, str]:
        """The urlencoded body; {} for another content type (as Flask's `request.form`)."""
        if self._form is None:
            content_type = (self.environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
            body = self._body()
            if content_type != FORM:
                self._form = {}
            else:
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise HotError(400, "invalid_request", "The body is not UTF-8.") from None
                self._form = _pairs(text, unique=True)
        return self._form

    def _body(self) -> bytes:
        environ = self.environ
        length_header = environ.get("CONTENT_LENGTH") or ""
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        if length_header:
            try:
                length = int(length_header)
            except ValueError:
                raise HotError(400, "invalid_request", "Malformed Content-Length.") from None
            if length > self.max_body:
                raise _too_large()
            return stream.read(length) if length > 0 else b""
        if environ.get("wsgi.input_terminated") or "chunked" in (
            environ.get("HTTP_TRANSFER_ENCODING") or ""
        ).lower():
            body = stream.read(self.max_body + 1)
            if len(body) > self.max_body:
                raise _too_large()
            return body
        return b""


def _too_large() -> HotError:
    return HotError(413, "invalid_request",
                    "The data value transmitted exceeds the capacity limit.")


def _pairs(text: str, unique: bool) -> dict[str, str]:
    """Decoded `name=value` pairs (the first of a repeated name); a NUL is refused, and a name
    sent twice where `unique`."""
    if not text:
        return {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise HotError(400, "invalid_request", "The request is not valid UTF-8.") from None
    found: dict[str, str] = {}
    for name, value in pairs:
        if NUL in name or NUL in value:
            raise HotError(400, "invalid_request", REFUSAL)
        if name in found:
            if not unique:
                continue
            raise HotError(400, "invalid_request", f"Parameter '{name}' appears more than once.")
        found[name] = value
    return found


def json_body(payload: Any) -> bytes:
    return json.dumps(payload).encode()
