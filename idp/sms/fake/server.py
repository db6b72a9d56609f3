"""Serving the fake providers: in a thread for tests and the demo, or in the foreground for
`idp fake-sms`; `FakeSmsControl` is the control API from Python."""

from __future__ import annotations

from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer

from idp.fake_serving import BackgroundFake, make_fake_server, serve_in_foreground
from idp.sms.fake.app import create_fake_sms_app
from idp.sms.fake.state import FakeSmsState


class FakeSmsControl:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(f"{self.base_url}/__fake__{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def add_account(self, provider: str, key_id: str, key_secret: str, **options: Any) -> None:
        """options: sign_names, templates, app_id, app_secret_key."""
        self._post("/accounts", {"provider": provider, "key_id": key_id,
                                 "key_secret": key_secret, **options})

    def arm_failure(self, provider: str, times: int = 1, **failure: Any) -> None:
        """failure: code, delay, garbage, status."""
        self._post("/failures", {"provider": provider, "times": times, **failure})

    def messages(self, phone: str | None = None) -> list[dict[str, Any]]:
        params = {"phone": phone} if phone else {}
        response = self.http.get(f"{self.base_url}/__fake__/messages", params=params, timeout=10)
        response.raise_for_status()
        return list(response.json())

    def last_code(self, phone: str) -> str | None:
        sent = self.messages(phone)
        return sent[-1]["code"] if sent else None

    def rejections(self) -> list[dict[str, str]]:
        response = self.http.get(f"{self.base_url}/__fake__/rejections", timeout=10)
        return list(response.json())

    def captcha_ticket(self, captcha_code: int = 1) -> dict[str, str]:
        return dict(self._post("/captcha_tickets", {"captcha_code": captcha_code}))

    def advance_clock(self, seconds: float) -> None:
        self._post("/clock", {"advance": seconds})

    def reset(self) -> None:
        self._post("/reset", {})

    def close(self) -> None:
        self.http.close()


class FakeSmsServer(BackgroundFake):
    thread_name = "fake-sms"

    def __init__(self, server: BaseWSGIServer, state: FakeSmsState) -> None:
        super().__init__(server)
        self.state = state
        self.control = FakeSmsControl(self.base_url)

    def shutdown(self) -> None:
        self.control.close()
        super().shutdown()


def _make_server(host: str, port: int, echo: bool) -> tuple[BaseWSGIServer, FakeSmsState]:
    state = FakeSmsState()
    return make_fake_server(host, port, create_fake_sms_app(state, echo=echo)), state


def serve_in_thread(host: str = "127.0.0.1", port: int = 0, echo: bool = False) -> FakeSmsServer:
    """Port 0 picks a free port; read it back from `.base_url`."""
    server, state = _make_server(host, port, echo)
    return FakeSmsServer(server, state).start()


def run(host: str = "127.0.0.1", port: int = 8801) -> None:
    """Foreground server for `idp fake-sms`; prints every accepted message; stops on Ctrl-C."""
    server, _ = _make_server(host, port, echo=True)
    serve_in_foreground(server, f"fake SMS (Aliyun, Tencent, Tencent Captcha) on "
                                f"http://{host}:{server.server_port} (control API: /__fake__/)")
