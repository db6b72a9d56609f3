"""Fewer and smaller round trips on a slow phone.

- Static files are linked with their content hash (`/static/style.css?v=<sha256 prefix>`): a URL
  names one version of a file, so it is cached for a year and never revalidated
  (`Cache-Control: public, max-age=31536000, immutable`, RFC 8246). A URL without the current
  hash (an old page, a hand-typed link) is answered with `no-cache`, so it is revalidated.
- Responses are compressed with brotli or gzip (Flask-Compress) when that is safe:
  static files always; HTML only when the request came from this site (`Sec-Fetch-Site:
  same-origin`) or from the user (`none`). HTML carries the CSRF token and, on the admin's
  two-factor page, the TOTP key, and reflects parameters such as `next`: compressed, a
  cross-site request could use its length as an oracle (BREACH). JSON (tokens) is never
  compressed for the same reason.
- `/favicon.ico` is served, so browsers stop asking for it and getting a 404 page.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request
from flask_compress import Compress

ONE_YEAR = 365 * 24 * 3600
IMMUTABLE = f"public, max-age={ONE_YEAR}, immutable"
SAFE_HTML_FETCH_SITES = frozenset({"same-origin", "none"})
STATIC_TYPES = [
    "text/css",
    "text/javascript",
    "application/javascript",
    "image/svg+xml",
    "image/x-icon",
    "image/vnd.microsoft.icon",
]

compress = Compress()


class StaticDigests:
    """sha256 of each static file, recomputed when the file changes (its mtime and size)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder).resolve()
        self._known: dict[str, tuple[tuple[int, int], str]] = {}

    def digest(self, filename: str) -> str | None:
        path = (self.folder / filename).resolve()
        if not path.is_relative_to(self.folder) or not path.is_file():
            return None
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        known = self._known.get(filename)
        if known and known[0] == stamp:
            return known[1]
        value = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        self._known[filename] = (stamp, value)
        return value


def _digests() -> StaticDigests:
    return current_app.extensions["idp_static_digests"]  # type: ignore[no-any-return]


def add_content_hash(endpoint: str, values: dict[str, Any]) -> None:
    """`url_for('static', filename=…)` everywhere gets `v=<content hash>`."""
    if endpoint == "static" and "filename" in values and "v" not in values:
        digest = _digests().digest(values["filename"])
        if digest:
            values["v"] = digest


def cache_static(response: Response) -> Response:
    if request.endpoint != "static" or response.status_code != 200:
        return response
    filename = (request.view_args or {}).get("filename", "")
    if request.args.get("v") and request.args.get("v") == _digests().digest(filename):
        response.headers["Cache-Control"] = IMMUTABLE
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


def compress_when_safe(response: Response) -> Response:
    if request.endpoint in ("static", "favicon"):
        if response.direct_passthrough:
            # Read the (small) file whole, so it is compressed with a Content-Length, and close
            # it now rather than whenever the server closes the response.
            response.direct_passthrough = False
            response.make_sequence()
            response.close()
        return compress.after_request(response)
    if response.mimetype != "text/html" or 300 <= response.status_code < 400:
        return response  # a redirect's body is a link nobody reads: not worth compressing
    # The answer depends on both headers: a cache must not hand one variant to the other.
    response.vary.update(("Sec-Fetch-Site", "Accept-Encoding"))
    if request.headers.get("Sec-Fetch-Site") in SAFE_HTML_FETCH_SITES:
        return compress.after_request(response)
    return response


def favicon() -> Any:
    """Browsers that ignore `<link rel="icon">` ask for this; answered without a redirect."""
    response = current_app.send_static_file("favicon.svg")
    response.headers["Cache-Control"] = f"public, max-age={24 * 3600}"
    return response


def init_app(app: Flask) -> None:
    app.extensions["idp_static_digests"] = StaticDigests(app.static_folder or "static")
    app.config.setdefault("COMPRESS_REGISTER", False)  # compress_when_safe decides
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["br", "gzip"])
    app.config.setdefault("COMPRESS_MIMETYPES", ["text/html", *STATIC_TYPES])
    compress.init_app(app)
    app.url_defaults(add_content_hash)
    # after_request hooks run last-registered first: compress, then set the caching headers.
    app.after_request(cache_static)
    app.after_request(compress_when_safe)
    app.add_url_rule("/favicon.ico", "favicon", favicon)
