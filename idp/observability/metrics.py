"""Prometheus metrics, correct across the server's workers (granian or gunicorn).

`idp serve` sets `PROMETHEUS_MULTIPROC_DIR` before the server starts, so every worker writes its
samples to files there and `/metrics` sums them (prometheus-client's multiprocess mode); a worker
leaving marks its own files (idp/operations/granian_app.py; gunicorn's `child_exit` hook in
idp/operations/gunicorn_conf.py). Without the
variable (tests, `idp dev`) the process's own registry is served.

Who may read `/metrics`: loopback callers that did not come through a proxy, anyone presenting
`Authorization: Bearer <IDP_METRICS_TOKEN>`, or everyone when `IDP_METRICS_PUBLIC` is true.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.orm import Session

from idp.observability.logging import info_verbatim, redact

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

http_requests = Counter(
    "idp_http_requests", "HTTP requests by Flask endpoint", ["endpoint", "method", "status"]
)
http_latency = Histogram(
    "idp_http_request_duration_seconds",
    "Time to answer, by Flask endpoint",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS,
)
tokens_issued = Counter("idp_tokens_issued", "Token responses issued, by grant", ["grant_type"])
logins = Counter("idp_logins", "Successful logins, by channel", ["channel"])
wechat_calls = Counter(
    "idp_wechat_calls", "WeChat server-API calls, by path and errcode", ["path", "errcode"]
)
wechat_latency = Histogram(
    "idp_wechat_call_duration_seconds",
    "WeChat server-API latency",
    ["path"],
    buckets=LATENCY_BUCKETS,
)
merges = Counter("idp_account_merges", "Accounts merged, by rule", ["rule"])
event_deliveries = Counter(
    "idp_event_deliveries", "Event delivery attempts, by sink and outcome", ["sink", "outcome"]
)
event_delivery_latency = Histogram(
    "idp_event_delivery_latency_seconds",
    "From the change's commit to the receiver's acknowledgement, by sink",
    ["sink"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0),
)

bp = Blueprint("observability", __name__)


# --- hooks other domains call (or pass) -------------------------------------------------------


# {grant type: its child of `tokens_issued`}: only grants that issued, the server's registered.
_TOKENS_ISSUED_BY_GRANT: dict[str, Any] = {}


def count_token_issued(grant_type: str | None) -> None:
    grant = grant_type or "other"
    counter = _TOKENS_ISSUED_BY_GRANT.get(grant)
    if counter is None:  # prometheus-client's `labels` checks and locks on every call (~10 µs)
        counter = _TOKENS_ISSUED_BY_GRANT[grant] = tokens_issued.labels(grant_type=grant)
    counter.inc()


def count_event_delivery(sink: str, outcome: str) -> None:
    event_deliveries.labels(sink=sink, outcome=outcome).inc()


def observe_event_delivered(sink: str, seconds: float) -> None:
    event_delivery_latency.labels(sink=sink).observe(max(seconds, 0.0))


def wechat_call_observer(path: str, errcode: int | None, seconds: float) -> None:
    """The `on_call` hook of `WeChatClient`: errcode None means WeChat gave no usable answer."""
    wechat_calls.labels(path=path, errcode="none" if errcode is None else str(errcode)).inc()
    wechat_latency.labels(path=path).observe(seconds)


# --- requests ---------------------------------------------------------------------------------


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


# Labelled children by their labels: `labels()` costs more than the increment itself.
_REQUEST_COUNTERS: dict[tuple[str, str, int], Any] = {}
_REQUEST_LATENCIES: dict[tuple[str, str], Any] = {}


def observe_request(endpoint: str, method: str, status: int, seconds: float | None) -> None:
    """One request in `idp_http_requests` and its latency histogram: the Flask pipeline's
    hook below and the hot paths' dispatcher (`idp/oidc/hot_paths`) both count here."""
    counter = _REQUEST_COUNTERS.get((endpoint, method, status))
    if counter is None:
        counter = http_requests.labels(endpoint=endpoint, method=method, status=status)
        _REQUEST_COUNTERS[(endpoint, method, status)] = counter
    counter.inc()
    if seconds is None:
        return
    latency = _REQUEST_LATENCIES.get((endpoint, method))
    if latency is None:
        latency = http_latency.labels(endpoint=endpoint, method=method)
        _REQUEST_LATENCIES[(endpoint, method)] = latency
    latency.observe(seconds)


def _observe_request(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    # The endpoint name, never the raw path: paths carry ids and would explode the label set.
    endpoint = request.endpoint or "unmatched"
    status = response.status_code
    elapsed = time.perf_counter() - started if started is not None else None
    observe_request(endpoint, request.method, status, elapsed)
    if elapsed is not None and current_app.config.get("IDP_ACCESS_LOG", True):
        _access_line(endpoint, status, elapsed)
    return response


def _access_line(endpoint: str, status: int, elapsed: float) -> None:
    """The request's access log line (`info_verbatim`), its path redacted here as the
    handler's filter would redact it: the path is the caller's; the rest are the route's name,
    numbers and the peer's address."""
    info_verbatim(logging.getLogger("idp.access"),
                  redact(f"{request.method} {request.path} {status}"),
                  {"endpoint": endpoint, "status": status,
                   "duration_ms": round(elapsed * 1000, 2), "remote_addr": request.remote_addr},
                  g.get("request_id"))


# --- logins and merges, counted when their rows commit ------------------------------------------

_PENDING = "idp_metrics_pending"
LOGIN_EVENT_TABLE = "login_event"  # idp.accounts.models.LoginEvent
MERGE_RECORD_TABLE = "merge_record"  # idp.identity.models.MergeRecord


def _collect_new_rows(session: Session, _flush_context: Any) -> None:
    # By table name: observability sits below the domains whose rows it counts.
    for row in session.new:
        table = getattr(row, "__tablename__", None)
        if table == LOGIN_EVENT_TABLE:
            session.info.setdefault(_PENDING, []).append((logins, {"channel": row.channel}))
        elif table == MERGE_RECORD_TABLE:
            session.info.setdefault(_PENDING, []).append((merges, {"rule": row.rule}))


def _count_committed(session: Session) -> None:
    for counter, labels in session.info.pop(_PENDING, []):
        counter.labels(**labels).inc()


def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _listen_to_sessions() -> None:
    if not event.contains(Session, "after_flush", _collect_new_rows):
        event.listen(Session, "after_flush", _collect_new_rows)
        event.listen(Session, "after_commit", _count_committed)
        event.listen(Session, "after_rollback", _forget_rolled_back)


# --- the endpoint -----------------------------------------------------------------------------


@bp.get("/metrics")
def metrics() -> Response:
    if not _may_read_metrics():
        abort(403, "Metrics are readable from loopback or with the metrics token only.")
    body = generate_latest(_registry())
    collectors = current_app.extensions.get("idp_scrape_collectors", [])
    if collectors:
        # Read at scrape time from shared state (the database), so correct whichever process
        # did the work: one registry per scrape, never the global one.
        registry = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            registry.register(collector)
        body += generate_latest(registry)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def add_scrape_collector(app: Flask, collector: Any) -> None:
    """A prometheus-client collector whose `collect()` runs at each scrape of `/metrics`."""
    app.extensions.setdefault("idp_scrape_collectors", []).append(collector)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def _may_read_metrics() -> bool:
    config = current_app.config
    if _truthy(config.get("IDP_METRICS_PUBLIC")):
        return True
    token = config.get("IDP_METRICS_TOKEN")
    if token:
        presented = request.headers.get("Authorization", "")
        if hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            return True
    # Behind a proxy on the same host every caller looks like loopback: a forwarded request is
    # never trusted as local.
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False
    return _is_loopback(request.remote_addr)


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


WeChatCallObserver = Callable[[str, int | None, float], None]


def add_wechat_call_observer(app: Flask, observer: WeChatCallObserver) -> None:
    """Adds `observer` to the `on_call` hook the WeChat login passes to `WeChatClient`
    (`app.extensions["idp_wechat_on_call"]`), keeping any observer already there."""
    previous = app.extensions.get("idp_wechat_on_call")
    if previous is None:
        app.extensions["idp_wechat_on_call"] = observer
        return

    def both(path: str, errcode: int | None, seconds: float) -> None:
        previous(path, errcode, seconds)
        observer(path, errcode, seconds)

    app.extensions["idp_wechat_on_call"] = both


def init_app(app: Flask) -> None:
    # First of the before_request hooks, so that requests refused by an earlier hook (the rate
    # limiter's 429) are timed and counted too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_observe_request)
    app.register_blueprint(bp)
    add_wechat_call_observer(app, wechat_call_observer)
    _listen_to_sessions()
