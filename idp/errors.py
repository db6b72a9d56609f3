"""App-wide error handlers: JSON in the OAuth shape for API paths, a page for people.

No stack trace ever reaches a client; the request id ties the answer to the log line.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("idp.errors")

API_PREFIXES = ("/oauth/", "/wechat/", "/.well-known/", "/metrics", "/healthz", "/readyz")

HTTP_TO_OAUTH = {
    400: "invalid_request",
    401: "invalid_client",
    403: "access_denied",
    404: "not_found",
    405: "invalid_request",
    413: "invalid_request",
    415: "invalid_request",
    429: "temporarily_unavailable",
}


def wants_json() -> bool:
    return request.path.startswith(API_PREFIXES) and request.path != "/oauth/authorize"


def _retry_after(error: HTTPException) -> int:
    """Seconds until a Flask-Limiter window frees up: the limit's own window length (the
    X-RateLimit headers that would say it exactly cost two Redis calls per request)."""
    limit = getattr(getattr(error, "limit", None), "limit", None)
    return int(limit.get_expiry()) if limit is not None else 60


def _renderer_for(path: str) -> Any:
    """A domain's own error format for its paths (the management API's problem documents),
    registered in `app.extensions["idp_error_renderers"]` as {path prefix: render(error)}."""
    for prefix, render in current_app.extensions.get("idp_error_renderers", {}).items():
        if path.startswith(prefix):
            return render
    return None


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        render = _renderer_for(request.path)
        if render is not None:
            return render(error)
        status = error.code or 500
        if wants_json():
            body = {
                "error": HTTP_TO_OAUTH.get(status, "server_error"),
                "error_description": error.description or error.name,
                "request_id": g.get("request_id"),
            }
            response = jsonify(body)
            response.status_code = status
            response.headers["Cache-Control"] = "no-store"
            original = error.get_response()
            for name in ("Retry-After", "Allow"):
                if original.headers.get(name):
                    response.headers[name] = original.headers[name]
            if status == 429 and "Retry-After" not in response.headers:
                response.headers["Retry-After"] = str(_retry_after(error))
            return response
        return render_template("error.html", status=status, message=error.description), status

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Any:
        from idp.extensions import db

        db.session.rollback()
        log.exception("unhandled error", extra={"path": request.path})
        render = _renderer_for(request.path)
        if render is not None:
            return render(error)
        if wants_json():
            response = jsonify(
                {
                    "error": "server_error",
                    "error_description": "The server could not complete the request.",
                    "request_id": g.get("request_id"),
                }
            )
            response.status_code = 500
            response.headers["Cache-Control"] = "no-store"
            return response
        return render_template("error.html", status=500, message=None), 500
