"""The `api` blueprint: request-size limit, bearer authentication with scopes, per-client rate
limit, and every error as a problem document."""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, request
from limits import parse_many
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import LimitedStream

from idp.api.problems import ApiProblem, problem_response
from idp.extensions import db, limiter
from idp.identity.audit import Actor
from idp.oidc.tokens import decode_access_token

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

DEFAULT_MAX_BODY_BYTES = 16 * 1024
DEFAULT_RATE_LIMIT = "20/second;600/minute"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

F = TypeVar("F", bound=Callable[..., Any])


@bp.before_request
def limit_body_size() -> None:
    """413 for a body over the limit, whether it says its length (Content-Length) or not
    (chunked, RFC 9112 §7.1): werkzeug cuts an unannounced body at the limit without a word,
    which the JSON parser then refused as malformed (400)."""
    limit = int(current_app.config.get("IDP_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    if request.content_length is not None:
        if request.content_length > limit:
            raise _too_large(limit)
        request.max_content_length = limit
        return
    if request.method in SAFE_METHODS and "Transfer-Encoding" not in request.headers:
        return
    # Read at most one byte past the limit (unless a hook read it first, capped by the app).
    request.max_content_length = limit + 1
    body = request.get_data(cache=True)
    if len(body) > limit or _cut_at_a_cap(request.stream):
        raise _too_large(limit)


def _too_large(limit: int) -> ApiProblem:
    return ApiProblem(413, "request_too_large", f"the body may hold at most {limit} bytes")


def _cut_at_a_cap(stream: object) -> bool:
    """The body was read up to a maximum (the app's MAX_CONTENT_LENGTH) and may go on."""
    return isinstance(stream, LimitedStream) and stream.is_exhausted


@bp.after_request
def never_cached(response: Response) -> Response:
    """Every answer names accounts, sessions or tokens: no cache keeps one (RFC 9111 §5.2.2.5),
    searches and lists as much as single reads (issue 23 item 6)."""
    response.headers["Cache-Control"] = "no-store"
    return response


def requires(scope: str) -> Callable[[F], F]:
    """RFC 6750: a client-credentials access token of this IdP carrying `scope`."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            client_id, granted = _authenticate(scope)
            _rate_limit(client_id)
            g.api_client_id = client_id
            g.api_scopes = granted
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def api_actor() -> Actor:
    """Every change through the API is audited as `client:<client_id>`."""
    return Actor("client", g.api_client_id)


def holds_scope(scope: str) -> bool:
    """Whether the caller's token carries `scope` too (for a narrower power inside a call)."""
    return scope in g.get("api_scopes", frozenset())


def insufficient_scope(scope: str) -> ApiProblem:
    return ApiProblem(
        403, "insufficient_scope", f"this call needs the scope {scope}",
        headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
    )


def _authenticate(scope: str) -> tuple[str, frozenset[str]]:
    header = request.headers.get("Authorization", "")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise ApiProblem(401, "unauthenticated", "a bearer token is required",
                         headers={"WWW-Authenticate": 'Bearer realm="idp-api"'})
    claims = decode_access_token(token.strip())
    if claims is None or claims.is_revoked() or claims.claims.get("sub") != claims.client_id:
        # Only client-credentials tokens: a user's token never manages accounts.
        raise ApiProblem(401, "invalid_token", "the token is not a valid client token",
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    granted = frozenset(claims.scope.split())
    if scope not in granted:
        raise insufficient_scope(scope)
    return claims.client_id, granted


def _rate_limit(client_id: str) -> None:
    text = str(current_app.config.get("IDP_API_RATE_LIMIT") or DEFAULT_RATE_LIMIT)
    if not limiter.enabled:  # RATELIMIT_ENABLED: only tests switch limits off
        return
    for item in parse_many(text):
        try:
            allowed = limiter.limiter.hit(item, "api", client_id)
            reset_at = limiter.limiter.get_window_stats(item, "api", client_id)[0]
        except Exception:  # noqa: BLE001 - the limit store is down: serve rather than fail
            log.warning("rate-limit storage unavailable for the management API")
            return
        if not allowed:
            retry = max(1, math.ceil(reset_at - time.time()))
            raise ApiProblem(429, "rate_limited", f"at most {item} per client",
                             headers={"Retry-After": str(retry)})


@bp.errorhandler(ApiProblem)
def api_problem(problem: ApiProblem) -> Response:
    db.session.rollback()
    return problem_response(problem)


@bp.errorhandler(HTTPException)
def http_problem(error: HTTPException) -> Response:
    status = error.code or 500
    problem = ApiProblem(status, f"http_{status}", error.description or error.name)
    response = problem_response(problem)
    allow = error.get_response().headers.get("Allow")
    if allow:
        response.headers["Allow"] = allow
    return response


@bp.errorhandler(Exception)
def unexpected_problem(error: Exception) -> Response:
    db.session.rollback()
    log.exception("management API error", extra={"path": request.path})
    return server_error_problem()


def server_error_problem() -> Response:
    return problem_response(ApiProblem(500, "server_error", "the request could not be completed"))


def app_level_problem(error: Exception) -> Response:
    """The app's error handlers answer /api/v1 paths with this (unknown routes, wrong methods,
    and what escaped before the blueprint: those are logged by the app's handler)."""
    if isinstance(error, HTTPException):
        return http_problem(error)
    return server_error_problem()
