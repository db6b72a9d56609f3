"""Serving the fake WeChat: in a background thread for tests, or in the foreground."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from idp.wechat.fake.app import create_fake_wechat_app
from idp.wechat.fake.control_client import FakeWeChatControl
from idp.wechat.fake.state import FakeApp, FakeState


class _PathOnlyRequestHandler(WSGIRequestHandler):
    """Access log without query strings: they carry app secrets and codes."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log("info", '"%s %s" %s %s', self.command, urlsplit(self.path).path, code, size)


class FakeWeChatServer:
    def __init__(self, server: BaseWSGIServer, state: FakeState) -> None:
        self._server = server
        self.state = state
        self.base_url = f"http://{server.host}:{server.server_port}"
        self.control = FakeWeChatControl(self.base_url)
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-wechat", daemon=True
        )

    def start(self) -> FakeWeChatServer:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self.control.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeWeChatServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()


def _make_server(host: str, port: int, apps: Iterable[FakeApp]) -> tuple[BaseWSGIServer, FakeState]:
    state = FakeState()
    app = create_fake_wechat_app(apps, state)
    server = make_server(host, port, app, threaded=True, request_handler=_PathOnlyRequestHandler)
    return server, state


def serve_in_thread(
    host: str = "127.0.0.1", port: int = 0, apps: Iterable[FakeApp] = ()
) -> FakeWeChatServer:
    """Port 0 picks a free port; read it back from `.base_url`."""
    server, state = _make_server(host, port, apps)
    return FakeWeChatServer(server, state).start()


def run(host: str = "127.0.0.1", port: int = 8800, apps: Iterable[FakeApp] = ()) -> None:
    """Foreground server for `idp fake-wechat`; stops on Ctrl-C."""
    server, _ = _make_server(host, port, apps)
    print(f"fake WeChat on http://{host}:{server.server_port} (control API: /__fake__/)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["FakeWeChatControl", "FakeWeChatServer", "run", "serve_in_thread"]
