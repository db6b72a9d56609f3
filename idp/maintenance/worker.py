"""Who runs the event delivery and the scheduled jobs (so it sits in `maintenance`, above
`events`): `idp worker` in production, or a thread inside the web process.

The embedded thread starts with the first request a process serves rather than in `create_app`:
a command such as `idp db upgrade` then never starts one, and under a pre-forking server each
worker process starts its own after the fork (threads do not survive a fork). Tests never get
one (`app.testing`); they call `deliver_due` themselves. Set `IDP_EVENT_DELIVERY` to `external`
when `idp worker` runs beside the web processes (both at once is safe, merely redundant).

`idp worker` stops on SIGTERM (systemd's stop) or SIGINT after the delivery in hand: each
delivery commits on its own, so nothing is left claimed for a lease's length.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from flask import Flask

from idp.events.amqp import AmqpPublisher
from idp.events.delivery import deliver_due
from idp.events.monitoring import OutboxCollector
from idp.extensions import db
from idp.maintenance.schedule import start_scheduler
from idp.observability.metrics import add_scrape_collector

log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 2.0


def run_worker(app: Flask, stop: threading.Event, poll_seconds: float | None = None) -> None:
    """Delivers until `stop` is set; a failing round is logged and the loop goes on. One AMQP
    connection is kept for the whole loop (it is not shared between threads)."""
    interval = poll_seconds or float(app.config.get("IDP_EVENT_POLL_SECONDS", DEFAULT_POLL_SECONDS))
    publisher = AmqpPublisher.from_config(app.config) if app.config.get("IDP_AMQP_URL") else None
    try:
        while not stop.is_set():
            run_once(app, publisher, stop)
            if publisher is not None:
                publisher.keepalive()
            stop.wait(interval)
    finally:
        if publisher is not None:
            publisher.close()


def run_once(
    app: Flask, publisher: AmqpPublisher | None = None, stop: threading.Event | None = None
) -> int:
    with app.app_context():
        try:
            return deliver_due(amqp=publisher, stop=stop).attempted
        except Exception:
            log.exception("event delivery round failed")
            db.session.rollback()
            return 0
        finally:
            db.session.remove()


def serve_until_signalled(app: Flask, poll_seconds: float | None = None) -> None:
    """`idp worker`: runs the delivery loop and the scheduled jobs (idp/maintenance) until
    SIGTERM or SIGINT, then returns after the round in hand (a round commits each delivery as
    it goes)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("event worker stopping (signal %s)", signal.Signals(signum).name)
        stop.set()

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    log.info("event worker started")
    scheduler = start_scheduler(app, stop)  # retention, reconciliation, rollups, deletions
    try:
        run_worker(app, stop, poll_seconds)
        scheduler.join(timeout=30)  # a job in hand finishes its batch (each commits as it goes)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("event worker stopped")


def delivery_mode(app: Flask) -> str:
    """`embedded` (default) or `external`; read once, at start-up."""
    return str(
        app.config.get("IDP_EVENT_DELIVERY") or "embedded"
    )


def init_app(app: Flask) -> None:
    add_scrape_collector(app, OutboxCollector(app))
    if app.testing or delivery_mode(app) != "embedded":
        return
    started = threading.Event()
    lock = threading.Lock()
    # Set it to stop the embedded delivery thread and scheduled jobs (tests, a clean shutdown).
    stop = app.extensions["idp_embedded_worker_stop"] = threading.Event()

    @app.before_request
    def start_embedded_delivery() -> None:
        if started.is_set():
            return
        with lock:
            if started.is_set():
                return
            thread = threading.Thread(
                target=run_worker,
                args=(app, stop),
                name="idp-event-delivery",
                daemon=True,
            )
            thread.start()
            start_scheduler(app, stop)
            started.set()
