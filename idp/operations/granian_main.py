"""`idp serve`'s HTTP server: granian (a Rust HTTP server) running the WSGI app.

    python -m idp.operations.granian_main --host H --port P --workers N

Why granian rather than gunicorn (measured in bench/README.md): HTTP parsing, keep-alive and
slow clients are handled by Rust, off the GIL, so a trivial Flask view is served ~4 times as
fast as under gunicorn `gthread`, and a client sending its headers one byte at a time holds no
Python thread (header read timeout: 30 s). Python threads (`BLOCKING_THREADS` per worker) run
only complete requests.

Request heads are capped at `MAX_REQUEST_HEAD_BYTES` by granian itself (hyper's read buffer):
a larger one is answered 431 (RFC 6585 §5) before any Python runs, whatever proxy is in front.

Signals to the master: `HUP` respawns the workers one by one with fresh code and configuration
(each old worker finishes its requests first), `TERM`/`INT` stop gracefully.
"""

from __future__ import annotations

import argparse
import os
import shutil
from typing import Any

from granian.constants import Interfaces
from granian.http import HTTP1Settings, HTTP2Settings
from granian.server import MPServer, MTServer, Server

from idp.observability.logging import ACCESS_LOG_OFF, server_log_config

APP_LOADER = "idp.operations.granian_app:load"
# Python threads per worker that run requests (IDP_SERVE_THREADS): enough to overlap the
# database's and Redis's round trips and the commit's wait for the disk; more only queue on the
# GIL (bench/README.md).
BLOCKING_THREADS = 4


def blocking_threads() -> int:
    value = os.environ.get("IDP_SERVE_THREADS", "").strip()
    if not value:
        return BLOCKING_THREADS
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 256:
        raise SystemExit(f"IDP_SERVE_THREADS must be a number from 1 to 256, not {value!r}")
    return int(value)


# Requests a worker accepts at once (the rest wait in the kernel's backlog).
BACKPRESSURE = 64
GRACEFUL_SECONDS = 30
# Request line and headers together (granian's default buffer takes ~400 kB). nginx's default
# for one header line is 8 kB (large_client_header_buffers 4 8k); 16 kB fits every cookie and
# token this IdP sets or reads. HTTP/1's buffer cannot be smaller than hyper's 8 kB minimum.
MAX_REQUEST_HEAD_BYTES = 16 * 1024
HEADER_READ_TIMEOUT_MS = 30_000


def log_config() -> dict[str, Any]:
    """JSON lines on stderr, redacted, like the app's own logs."""
    return server_log_config({
        "_granian": {"level": "WARNING", "handlers": ["json"], "propagate": False},
        "granian.access": ACCESS_LOG_OFF,
    })


def build_server(host: str, port: int, workers: int) -> MPServer | MTServer:
    server = Server(
        APP_LOADER,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        factory=True,
        workers=workers,
        blocking_threads=blocking_threads(),
        backpressure=BACKPRESSURE,
        websockets=False,
        http1_settings=HTTP1Settings(
            header_read_timeout=HEADER_READ_TIMEOUT_MS, max_buffer_size=MAX_REQUEST_HEAD_BYTES
        ),
        http2_settings=HTTP2Settings(max_headers_size=MAX_REQUEST_HEAD_BYTES),
        log_dictconfig=log_config(),
        log_access=False,
        respawn_failed_workers=True,
        respawn_interval=3.5,  # a new worker loads the app before the old one stops
        workers_kill_timeout=GRACEFUL_SECONDS,
    )
    server.on_shutdown(_remove_owned_metrics_directory)
    return server


def _remove_owned_metrics_directory() -> None:
    directory = os.environ.get("IDP_METRICS_DIR_OWNED")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="idp serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ["IDP_SERVE_MASTER_PID"] = str(os.getpid())  # workers die with this process
    build_server(args.host, args.port, args.workers).serve()


if __name__ == "__main__":
    main()
