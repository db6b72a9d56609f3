"""Serving the fake WeChat: in a background thread for tests, or in the foreground (the
serving itself is `idp.fake_serving`'s, shared with the fake SMS providers)."""

from __future__ import annotations

from collections.abc import Iterable

from werkzeug.serving import BaseWSGIServer

from idp.fake_serving import BackgroundFake, make_fake_server, serve_in_foreground
from idp.wechat.fake.app import create_fake_wechat_app
from idp.wechat.fake.control_client import FakeWeChatControl
from idp.wechat.fake.state import FakeApp, FakeState


class FakeWeChatServer(BackgroundFake):
    thread_name = "fake-wechat"

    def __init__(self, server: BaseWSGIServer, state: FakeState) -> None:
        super().__init__(server)
        self.state = state
        self.control = FakeWeChatControl(self.base_url)

    def shutdown(self) -> None:
        self.control.close()
        super().shutdown()


def _make_server(host: str, port: int, apps: Iterable[FakeApp]) -> tuple[BaseWSGIServer, FakeState]:
    state = FakeState()
    return make_fake_server(host, port, create_fake_wechat_app(apps, state)), state


def serve_in_thread(
    host: str = "127.0.0.1", port: int = 0, apps: Iterable[FakeApp] = ()
) -> FakeWeChatServer:
    """Port 0 picks a free port; read it back from `.base_url`."""
    server, state = _make_server(host, port, apps)
    return FakeWeChatServer(server, state).start()


def run(host: str = "127.0.0.1", port: int = 8800, apps: Iterable[FakeApp] = ()) -> None:
    """Foreground server for `idp fake-wechat`; stops on Ctrl-C."""
    server, _ = _make_server(host, port, apps)
    serve_in_foreground(
        server, f"fake WeChat on http://{host}:{server.server_port} (control API: /__fake__/)"
    )


__all__ = ["FakeWeChatControl", "FakeWeChatServer", "run", "serve_in_thread"]
