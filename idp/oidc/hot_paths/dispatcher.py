"""The WSGI callable in front of Flask: the hot endpoints' whole request pipeline.

Per request, in order: the request id; the app context (configuration, the database session,
`g`, which holds the request as `g.hot_request`) pushed and popped, its teardown removing the
session as Flask's would; the NUL guard on path, query and headers; the endpoint; the observers
other domains registered (`observe`: usage counting); then the answer with the security headers
of every answer of the IdP, `request_id` in an error body, the request's metrics and its access log
line. An exception is rolled back and answered as the Flask app answers it (503 for a database
outage, else 500 with the request id), never with a trace.

A page (`pages`: the authorization endpoint, `authorize.py`) is answered here in its common case
only, with the same pipeline: a GET its handler answers; anything else, or the handler's None,
goes to Flask untouched."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, g

from idp import outage
from idp.extensions import db
from idp.input_guard import REFUSAL, target_has_nul
from idp.observability import metrics
from idp.observability.logging import info_verbatim
from idp.observability.request_id import request_id_from
from idp.oidc.hot_paths.http import HotError, HotRequest
from idp.security.headers import security_headers

Answer = tuple[int, list[tuple[str, str]], bytes]
Handler = Callable[[HotRequest], Answer]
# {path: (endpoint name for metrics and logs, {method: handler})}
Routes = dict[str, tuple[str, dict[str, Handler]]]
# A page's handler: its answer, or None to hand the request to Flask (`HotPathDispatcher._page`).
PageHandler = Callable[[HotRequest], Answer | None]
# {path: (endpoint name, handler)}: pages whose common answer is made here, the rest by Flask.
PageRoutes = dict[str, tuple[str, PageHandler]]
# Called after each answer, in the app context: (request, endpoint name, status).
Observer = Callable[[HotRequest, str, int], None]
OBSERVERS = "idp_hot_path_observers"

log = logging.getLogger("idp.errors")
access_log = logging.getLogger("idp.access")

REASONS = {200: "OK", 302: "FOUND", 400: "BAD REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
           404: "NOT FOUND", 405: "METHOD NOT ALLOWED", 413: "REQUEST ENTITY TOO LARGE",
           429: "TOO MANY REQUESTS", 500: "INTERNAL SERVER ERROR", 503: "SERVICE UNAVAILABLE"}
JSON_ERROR_HEADERS = [
    ("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")
]


class HotPathDispatcher:
    def __init__(self, app: Flask, fallback: Callable[..., Iterable[bytes]], routes: Routes,
                 pages: PageRoutes | None = None):
        self.app = app
        self.fallback = fallback
        self.routes = routes
        self.pages = pages or {}
        self.max_body = int(app.config.get("MAX_CONTENT_LENGTH") or 64 * 1024)
        self.access_log = bool(app.config.get("IDP_ACCESS_LOG", True))
        self.observers: list[Observer] = app.extensions.setdefault(OBSERVERS, [])

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        route = self.routes.get(path)
        if route is None:
            page = self.pages.get(path)
            if page is None:
                return self.fallback(environ, start_response)
            return self._page(environ, start_response, *page)
        started = time.perf_counter()
        endpoint, handlers = route
        request, context = self._begin(environ)
        try:
            answer = self._answer(request, handlers)
            self._observed(request, endpoint, answer[0], started)
        finally:
            context.pop()
        return self._respond(request, endpoint, answer, started, start_response)

    def _page(self, environ: dict[str, Any], start_response: Callable[..., Any], endpoint: str,
              handler: PageHandler) -> Any:
        """A page's common answer made here, or the request handed to Flask untouched: any
        method but GET, a NUL in the target, or the handler's None (before it wrote anything;
        the transaction is rolled back)."""
        if environ.get("REQUEST_METHOD") != "GET" or target_has_nul(environ):
            return self.fallback(environ, start_response)
        started = time.perf_counter()
        request, context = self._begin(environ)
        try:
            try:
                answer = handler(request)
            except Exception as error:  # noqa: BLE001 - answered, logged, never shown
                answer = self._unexpected(request, error)
            if answer is None:
                _discard_transaction()
            else:
                self._observed(request, endpoint, answer[0], started)
        finally:
            context.pop()
        if answer is None:
            return self.fallback(environ, start_response)
        return self._respond(request, endpoint, answer, started, start_response)

    def _begin(self, environ: dict[str, Any]) -> tuple[HotRequest, Any]:
        """The parsed request and its app context, pushed, the request on `g` (popped by the
        caller)."""
        request = HotRequest(environ, request_id_from(environ, self._proxies()), self.max_body)
        context = self.app.app_context()
        context.push()
        g.request_id = request.request_id
        g.hot_request = request
        return request, context

    def _observed(self, request: HotRequest, endpoint: str, status: int, started: float) -> None:
        """The observers and the access line, in the app context."""
        for observer in self.observers:
            observer(request, endpoint, status)
        if self.access_log:
            self._log(request, endpoint, status, time.perf_counter() - started)

    def _respond(self, request: HotRequest, endpoint: str, answer: Answer, started: float,
                 start_response: Callable[..., Any]) -> Any:
        status, headers, body = answer
        headers.extend(security_headers(self.app.config["IDP_ISSUER"]))
        headers.append(("X-Request-Id", request.request_id))
        if request.method == "HEAD":
            headers.append(("Content-Length", str(len(body))))
            body = b""
        else:
            headers.append(("Content-Length", str(len(body))))
        metrics.observe_request(endpoint, request.method, status, time.perf_counter() - started)
        start_response(f"{status} {REASONS.get(status, 'UNKNOWN')}", headers)
        return [body]

    def _proxies(self) -> int:
        return int(self.app.config.get("IDP_PROXY_FIX") or 0)

    def _answer(self, request: HotRequest, handlers: dict[str, Handler]) -> Answer:
        try:
            _refuse_nul(request.environ)
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                request.form  # noqa: B018 - parsed now: a NUL or an oversized body is refused
            handler = handlers.get("GET" if request.method == "HEAD" else request.method)
            if handler is None:
                return _method_not_allowed(request, handlers)
            return handler(request)
        except HotError as error:
            db.session.rollback()
            return error_answer(request, error.status, error.error, error.description,
                                error.headers)
        except Exception as error:  # noqa: BLE001 - answered, logged, never shown
            return self._unexpected(request, error)

    def _unexpected(self, request: HotRequest, error: Exception) -> Answer:
        _discard_transaction()
        if outage.is_database_outage(error):
            outage.outage_log(self.app).failed(error)
            status, headers, body = error_answer(
                request, 503, "temporarily_unavailable",
                "The service is briefly unavailable; try again shortly.")
            headers.append(("Retry-After", str(outage.RETRY_AFTER_SECONDS)))
            return status, headers, body
        log.exception("unhandled error", extra={"path": request.path})
        return error_answer(request, 500, "server_error",
                            "The server could not complete the request.")

    @staticmethod
    def _log(request: HotRequest, endpoint: str, status: int, seconds: float) -> None:
        """The access log line, as the Flask pipeline's: a route's own path, a method, numbers
        and the peer's address hold nothing to redact (`info_verbatim`)."""
        info_verbatim(access_log, f"{request.method} {request.path} {status}", {
            "endpoint": endpoint, "status": status, "duration_ms": round(seconds * 1000, 2),
            "remote_addr": request.environ.get("REMOTE_ADDR")}, request.request_id)


def _discard_transaction() -> None:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may be the thing that failed
        db.session().invalidate()  # the scoped session does not proxy invalidate


def error_answer(request: HotRequest, status: int, error: str, description: str | None,
                 headers: list[tuple[str, str]] | None = None) -> Answer:
    """OAuth error JSON (RFC 6749 §5.2) with the request id, never cached."""
    body: dict[str, Any] = {"error": error}
    if description:
        body["error_description"] = description
    body["request_id"] = request.request_id
    return status, [*JSON_ERROR_HEADERS, *(headers or [])], json.dumps(body).encode()


def _method_not_allowed(request: HotRequest, handlers: dict[str, Handler]) -> Answer:
    allowed = sorted({*handlers, "OPTIONS", *(["HEAD"] if "GET" in handlers else [])})
    allow = ("Allow", ", ".join(allowed))
    if request.method == "OPTIONS":
        return 200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                     allow], b""
    return error_answer(request, 405, "invalid_request",
                        "The method is not allowed for the requested URL.", [allow])


def _refuse_nul(environ: dict[str, Any]) -> None:
    """`idp/input_guard.py`'s rule on what a hot endpoint reads besides its form (the form's
    NUL is refused as it is parsed, `http.py`)."""
    if target_has_nul(environ):
        raise HotError(400, "invalid_request", REFUSAL)


def observe(app: Flask, observer: Observer) -> None:
    """Registers `observer`, called after every answer of a hot endpoint (a domain above the
    protocol, such as usage counting, hears of them without the protocol importing it)."""
    app.extensions.setdefault(OBSERVERS, []).append(observer)
