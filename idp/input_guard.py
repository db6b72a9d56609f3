"""One request-level guard against input no endpoint can store: a NUL character.

PostgreSQL's text types cannot hold U+0000 (SQLite can), so a NUL that reaches a query is a
driver error and a 500 — in a client_id, a nonce, a login form, an admin search, an id in a
path. Rather than guard each of those, every request is checked once, before any view or
blueprint hook runs: the path, the query, the form, a JSON body, the headers and the decoded
Basic credentials. A NUL anywhere is refused with 400, in the route's usual error shape
(`idp/errors.py`: OAuth JSON on protocol paths, a page for people). No legitimate client sends
one: URLs, form fields, JSON strings and header values of this IdP are text.

What the guard cannot see (a NUL inside a signed client assertion, or in data WeChat sends) is
refused or stripped where it is decoded: `idp/oidc/server.py` `cached_client`,
`idp/wechat/client.py`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, abort, request
from flask.json.provider import DefaultJSONProvider

NUL = "\x00"
REFUSAL = "The request contains a NUL character."


def has_nul(value: Any) -> bool:
    """True if a string anywhere in a (JSON-shaped) value holds a NUL."""
    return any_string(value, lambda text: NUL in text)


def any_string(value: Any, test: Callable[[str], bool]) -> bool:
    """True if `test` holds for a string anywhere in a (JSON-shaped) value, keys included.
    Iterative: a deeply nested body never costs recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if test(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _pairs_have_nul(pairs: Iterable[tuple[str, str]]) -> bool:
    return any(NUL in key or NUL in value for key, value in pairs)


def environ_has_nul(environ: dict[str, Any]) -> bool:
    """A NUL in any text of the WSGI environ: the headers (`HTTP_*`, `CONTENT_TYPE`,
    `CONTENT_LENGTH`) and the rest the server filled in from the request (method, path, query,
    address), where a NUL is no more welcome. Straight from the environ: building
    `request.headers` costs several times more; one pass over its values ~1 µs."""
    for value in environ.values():
        if value.__class__ is str and NUL in value:
            return True
    return False


def target_has_nul(environ: dict[str, Any]) -> bool:
    """A NUL in what every request carries, read straight from the WSGI environ (parsing it
    into werkzeug's request costs several times more): the path, the query (percent-encoded
    `%00`, or raw), the headers, and the decoded Basic credentials (RFC 7617 §2; OAuth clients'
    are also percent-decoded, RFC 6749 §2.3.1, hence `%00` there too). Other authorization
    schemes carry their text as it is in the header, seen with the headers."""
    if "%00" in environ.get("QUERY_STRING", "") or environ_has_nul(environ):
        return True
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if isinstance(authorization, str) and authorization[:6].lower() == "basic ":
        try:
            credentials = base64.b64decode(authorization[6:].strip())
        except ValueError:
            return False  # not Basic credentials at all: refused as such where they are read
        return b"\x00" in credentials or b"%00" in credentials
    return False


def refuse_nul() -> None:
    if target_has_nul(request.environ):
        abort(400, REFUSAL)
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.is_json:
        # Parsed once here and cached by Flask for the view; a body that is not JSON is the
        # view's to refuse, in its own words.
        if has_nul(request.get_json(silent=True)):
            abort(400, REFUSAL)
    elif _pairs_have_nul(request.form.items(multi=True)):
        abort(400, REFUSAL)


class DepthSafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested deeper than Python's recursion limit (60,000
    `[`) is a malformed body — a ValueError, which `get_json` answers with 400 or, when
    silent, None — instead of an uncaught RecursionError."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def init_app(app: Flask) -> None:
    app.json = DepthSafeJSONProvider(app)
    # Right after the request id (so the refusal carries one), before the rate limiter, the
    # session and every blueprint's hooks: nothing reads a parameter before this ran.
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks.insert(1 if hooks else 0, refuse_nul)
