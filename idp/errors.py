"""App-wide error handlers: JSON in the OAuth shape for API paths, a page for people.

No stack trace ever reaches a client; the request id ties the answer to the log line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    render_template,
    request,
)
from werkzeug.exceptions import HTTPException

from idp import outage


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says which setting and why (`idp.config`,
    `idp.sms.settings`, the claims catalogue)."""

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


# Under /oauth/ but for people: their errors are pages.
BROWSER_PATHS = ("/oauth/authorize", "/oauth/logout")


def wants_json() -> bool:
    return request.path.startswith(API_PREFIXES) and request.path not in BROWSER_PATHS


def _retry_after(error: HTTPException) -> int:
    """Seconds until a Flask-Limiter window frees up: the limit's own window length (the
    X-RateLimit headers that would say it exactly cost two Redis calls per request)."""
    limit = getattr(getattr(error, "limit", None), "limit", None)
    return int(limit.get_expiry()) if limit is not None else 60


def stamp_request_id(response: Response) -> Response:
    """Every JSON error body carries `request_id` (docs/DEPLOYMENT.md), whoever built it:
    Authlib's OAuth errors (RFC 6749 §5.2 allows extra members), the resource protector's
    RFC 6750 errors, the WeChat API's. Only error responses are read, so a success costs
    nothing."""
    if response.status_code < 400 or response.direct_passthrough or not response.is_json:
        return response
    body = response.get_json(silent=True)
    if isinstance(body, dict) and "request_id" not in body:
        body["request_id"] = g.get("request_id")
        response.set_data(json.dumps(body))
    return response


def _unavailable() -> Any:
    """503 + Retry-After (RFC 9110 §15.6.4, §10.2.3): `temporarily_unavailable` (RFC 6749
    §4.1.2.1) for clients — the mini-program contract retries on 503 — a page for people."""
    retry_after = str(outage.RETRY_AFTER_SECONDS)
    if wants_json():
        response = jsonify(
            {
                "error": "temporarily_unavailable",
                "error_description": "The service is briefly unavailable; try again shortly.",
                "request_id": g.get("request_id"),
            }
        )
    else:
        response = make_response(render_template("unavailable.html", retry_after=retry_after))
    response.status_code = 503
    response.headers["Retry-After"] = retry_after
    response.headers["Cache-Control"] = "no-store"
    return response


def _renderer_for(path: str) -> Any:
    """A domain's own error format for its paths (the management API's problem documents),
    registered in `app.extensions["idp_error_renderers"]` as {path prefix: render(error)}."""
    for prefix, render in current_app.extensions.get("idp_error_renderers", {}).items():
        if path.startswith(prefix):
            return render
    return None


def init_app(app: Flask) -> None:
    app.after_request(stamp_request_id)

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

    outage.init_app(app)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Any:
        from idp.extensions import db

        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection may be the thing that failed
            db.session().invalidate()  # the scoped session does not proxy invalidate
        if outage.is_database_outage(error):
            outage.outage_log(app).failed(error)
            return _unavailable()
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
