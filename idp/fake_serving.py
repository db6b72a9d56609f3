"""Serving a shipped fake (the WeChat server API, the SMS providers) on a local port: on a daemon
thread for tests and the demo, or in the foreground for `idp fake-wechat` / `idp fake-sms`. The
access log leaves out query strings: callers put app secrets, key ids, signatures and codes
there."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class PathOnlyRequestHandler(WSGIRequestHandler):
    """Access log without query strings."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log("info", '"%s %s" %s %s', self.command, urlsplit(self.path).path, code, size)


def make_fake_server(host: str, port: int, app: Flask) -> BaseWSGIServer:
    """Port 0 picks a free port."""
    return make_server(host, port, app, threaded=True, request_handler=PathOnlyRequestHandler)


def serve_in_foreground(server: BaseWSGIServer, banner: str) -> None:
    """Prints the banner and serves until Ctrl-C."""
    print(banner, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class BackgroundFake:
    """A fake's server on a daemon thread; `base_url` is where it answers."""

    thread_name = "fake"

    def __init__(self, server: BaseWSGIServer) -> None:
        self._server = server
        self.base_url = f"http://{server.host}:{server.server_port}"
        self._thread = threading.Thread(
            target=server.serve_forever, name=self.thread_name, daemon=True
        )

    def start(self) -> Self:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()
