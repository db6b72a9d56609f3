"""gunicorn settings for `idp serve` (`-c python:idp.operations.gunicorn_conf`).

Command-line flags given by `idp serve` (bind, workers) override what is here. `kill -HUP` on the
master reloads gracefully: new workers start with fresh code and configuration, old ones finish
their requests (up to `graceful_timeout`) and exit.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from idp.observability.logging import ACCESS_LOG_OFF, server_log_config

wsgi_app = "idp:create_app()"
# Threaded workers: each process serves `threads` requests at once and keeps idle client
# connections open (`keepalive` seconds), where sync workers answer `Connection: close` and pay
# an accept + TCP handshake per request. Python code runs one thread at a time per process, so
# threads add no CPU; they overlap database and Redis round trips and keep connections alive
# (bench/README.md has the measurements). `GUNICORN_CMD_ARGS="--threads N"` overrides.
worker_class = "gthread"
threads = 4
timeout = 30
graceful_timeout = 30
keepalive = 5
# Requests are logged by the app itself, as JSON with their request id (idp.access).
accesslog = None
# gunicorn >= 24 opens a control socket at one per-user path, which two instances on one host
# would fight over; `kill -HUP` / `-TERM` on the master is all `idp serve` needs.
control_socket_disable = True
# gunicorn trusts X-Forwarded-Proto only from these peers (`FORWARDED_ALLOW_IPS` overrides).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

logconfig_dict = server_log_config({
    "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
    "gunicorn.access": ACCESS_LOG_OFF,
})


def child_exit(_server: Any, worker: Any) -> None:
    """A worker's metric files stay (its counters still count); its live gauges are dropped."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def worker_exit(_server: Any, _worker: Any) -> None:
    """A worker stopping (HUP, TERM, max requests) writes its buffered usage counts."""
    from idp.usage.counters import flush_all

    flush_all()


def on_exit(_server: Any) -> None:
    directory = os.environ.get("IDP_METRICS_DIR_OWNED")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
