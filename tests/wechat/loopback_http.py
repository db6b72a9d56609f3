"""Loopback HTTP/1.1 servers that keep connections alive and record what reaches them, for the
WeChat transport's tests: keep-alive, proxies, TLS and requests sent twice are observed on a
real socket. (The fake WeChat cannot show keep-alive: werkzeug's server closes every
connection after one answer.)"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

SESSION = {"openid": "o-loopback", "session_key": "a2V5a2V5a2V5a2V5a2V5a2V5", "unionid": "u-1"}

# What a server does with the next requests, in order (then "answer"):
ANSWER = "answer"
ANSWER_AND_CLOSE = "answer and close"  # answer, then drop the connection without saying so
HANG_UP = "hang up"  # read the request, close the connection, answer nothing


@dataclass(frozen=True)
class Seen:
    client_port: int
    request_line: str
    headers: Message
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/plain"})
    body: bytes = json.dumps(SESSION).encode()


class LoopbackServer:
    """Answers each request with `answer` (or what `respond` makes of it) after `delay`
    seconds, as `plan` says; records every request in `seen`. `tls` serves HTTPS."""

    def __init__(
        self,
        tls: ssl.SSLContext | None = None,
        respond: Callable[[Seen], Answer] | None = None,
    ) -> None:
        self.seen: list[Seen] = []
        self.plan: list[str] = []
        self.answer = Answer()
        self.delay = 0.0
        self.respond = respond or (lambda _seen: self.answer)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.loopback = self  # type: ignore[attr-defined]
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        port = self._server.server_address[1]
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        # A short poll: stopping the server waits for one.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def ports(self) -> list[int]:
        return [seen.client_port for seen in self.seen]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self) -> None:
        loopback: LoopbackServer = self.server.loopback  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.client_address[1], self.requestline, self.headers, self.rfile.read(length))
        loopback.seen.append(seen)
        action = loopback.plan.pop(0) if loopback.plan else ANSWER
        if action == HANG_UP:
            self.close_connection = True
            return
        time.sleep(loopback.delay)
        answer = loopback.respond(seen)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)
        self.close_connection = action == ANSWER_AND_CLOSE

    do_POST = do_CONNECT = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read `seen`."""

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError):
            pass  # a client that gave up (a timeout test) or refused our certificate


def relay_to(base_url: str) -> Callable[[Seen], Answer]:
    """A `respond` that passes each request on to `base_url` (the fake WeChat) on a connection
    of its own and hands back the answer: the fake's logic behind a kept-alive front."""
    target = urlsplit(base_url)

    def relay(seen: Seen) -> Answer:
        method, path, _ = seen.request_line.split(" ", 2)
        connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=5)
        try:
            content_type = seen.headers.get("Content-Type")
            headers = {"Content-Type": content_type} if content_type else {}
            connection.request(method, path, body=seen.body or None, headers=headers)
            response = connection.getresponse()
            body = response.read()
            answer_type = response.getheader("Content-Type") or "text/plain"
            return Answer(response.status, {"Content-Type": answer_type}, body)
        finally:
            connection.close()

    return relay
