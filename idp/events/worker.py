"""Who runs the delivery: `idp worker` in production, or a thread inside the web process.

The embedded thread starts with the first request a process serves rather than in `create_app`:
a command such as `idp db upgrade` then never starts one, and under a pre-forking server each
worker process starts its own after the fork (threads do not survive a fork). Tests never get
one (`app.testing`); they call `deliver_due` themselves. Set `IDP_EVENT_DELIVERY` to `external`
when `idp worker` runs beside the web processes (both at once is safe, merely redundant).
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from idp.events.delivery import deliver_due
from idp.extensions import db

log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 2.0


def run_worker(app: Flask, stop: threading.Event, poll_seconds: float | None = None) -> None:
    """Delivers until `stop` is set; a failing round is logged and the loop goes on."""
    interval = poll_seconds or float(app.config.get("IDP_EVENT_POLL_SECONDS", DEFAULT_POLL_SECONDS))
    while not stop.is_set():
        run_once(app)
        stop.wait(interval)


def run_once(app: Flask) -> int:
    with app.app_context():
        try:
            from idp.identity.deletion import execute_due_deletions

            execute_due_deletions()  # accounts whose deletion grace period has ended
            return deliver_due().attempted
        except Exception:
            log.exception("event delivery round failed")
            db.session.rollback()
            return 0
        finally:
            db.session.remove()


def delivery_mode(app: Flask) -> str:
    """`embedded` (default) or `external`; read once, at start-up."""
    return str(
        app.config.get("IDP_EVENT_DELIVERY") or "embedded"
    )


def init_app(app: Flask) -> None:
    if app.testing or delivery_mode(app) != "embedded":
        return
    started = threading.Event()
    lock = threading.Lock()

    @app.before_request
    def start_embedded_delivery() -> None:
        if started.is_set():
            return
        with lock:
            if started.is_set():
                return
            thread = threading.Thread(
                target=run_worker,
                args=(app, threading.Event()),
                name="idp-event-delivery",
                daemon=True,
            )
            thread.start()
            started.set()
