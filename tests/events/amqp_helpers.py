"""The real RabbitMQ for the AMQP tests: a private exchange and queue per test, a consumer, a
TCP proxy on loopback that can cut the IdP's connections to the broker, and `idp worker` run as
a real process."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pika.exceptions

AMQP_URL = os.environ.get("IDP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
IDP = str(Path(sys.executable).with_name("idp"))


def broker_skip_reason() -> str | None:
    try:
        parameters = pika.URLParameters(AMQP_URL)
        parameters.socket_timeout = 2
        parameters.connection_attempts = 1
        pika.BlockingConnection(parameters).close()
    except (pika.exceptions.AMQPError, OSError) as error:
        return f"RabbitMQ not reachable at IDP_TEST_AMQP_URL ({type(error).__name__})"
    return None


@dataclass
class Message:
    routing_key: str
    message_id: str
    content_type: str
    delivery_mode: int
    body: bytes


@dataclass
class Broker:
    """A private exchange with a queue bound to every routing key, read with basic_get."""

    url: str
    exchange: str
    queue: str
    received: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(self.url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        self.channel.queue_declare(self.queue, durable=True)
        self.channel.queue_bind(self.queue, self.exchange, routing_key="#")

    def drain(self, until: int = 0, timeout: float = 30.0) -> list[Message]:
        """Everything queued so far (waiting up to `timeout` for `until` messages in all)."""
        deadline = time.monotonic() + timeout
        while True:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is not None:
                self.received.append(Message(
                    method.routing_key, properties.message_id, properties.content_type,
                    properties.delivery_mode, body,
                ))
                continue
            if len(self.received) >= until or time.monotonic() > deadline:
                return self.received
            time.sleep(0.05)

    def close(self) -> None:
        self.channel.queue_delete(self.queue)
        self.channel.exchange_delete(self.exchange)
        self.connection.close()


class CuttableProxy:
    """A TCP relay on loopback to the broker; `cut_after(n)` closes every connection once the
    IdP has sent `n` more bytes through it — in the middle of a batch of publishes. `go_down()`
    cuts every connection and closes each new one at once (the broker is away) until
    `come_back()`; `refused` counts the connections turned away meanwhile."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.budget: int | None = None
        self.cuts = 0
        self.refused = 0
        self.down = False
        self.live: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, sent_bytes: int) -> None:
        with self.lock:
            self.budget = sent_bytes

    def go_down(self) -> None:
        with self.lock:
            self.down = True
            live, self.live = self.live, set()
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def come_back(self) -> None:
        with self.lock:
            self.down = False

    def _accept(self) -> None:
        while not self.stopped:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.down:
                    self.refused += 1
                    downstream.close()
                    continue
                self.live.add(downstream)
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._relay, args=(downstream, upstream), daemon=True).start()

    def _relay(self, downstream: socket.socket, upstream: socket.socket) -> None:
        sockets = [downstream, upstream]
        # A selector, not select(): a long test process may hold descriptors past FD_SETSIZE.
        watch = selectors.DefaultSelector()
        for sock in sockets:
            watch.register(sock, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in watch.select(0.5):
                    source = key.fileobj
                    assert isinstance(source, socket.socket)
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is downstream and self._spend(len(data)):
                        return  # cut: both sides closed, mid-stream
                    (upstream if source is downstream else downstream).sendall(data)
        except OSError:
            return
        finally:
            watch.close()
            with self.lock:
                self.live.discard(downstream)
            for sock in sockets:
                sock.close()

    def _spend(self, amount: int) -> bool:
        with self.lock:
            if self.budget is None:
                return False
            self.budget -= amount
            if self.budget > 0:
                return False
            self.budget = None
            self.cuts += 1
            return True

    def close(self) -> None:
        self.stopped = True
        self.listener.close()


def worker_environment(app: Any, **overrides: str) -> dict[str, str]:
    """`idp worker` as a separate process on the test's database and broker."""
    config = app.config
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PROMETHEUS_"))}
    env.update(
        IDP_ISSUER=config["IDP_ISSUER"],
        IDP_DATABASE_URL=config["IDP_DATABASE_URL"],
        IDP_INSTANCE_PATH=config["IDP_INSTANCE_PATH"],
        IDP_SECRET_KEY=config["IDP_SECRET_KEY"],
        IDP_ENCRYPTION_KEY=config["IDP_ENCRYPTION_KEY"],
        IDP_EVENT_DELIVERY="external",
        IDP_EVENT_POLL_SECONDS="0.1",
        IDP_EVENT_LEASE_SECONDS="2",
        IDP_OUTBOUND_ALLOWED_NETWORKS=str(config.get("IDP_OUTBOUND_ALLOWED_NETWORKS") or ""),
        IDP_LOG_LEVEL="INFO",
    )
    if config.get("IDP_AMQP_URL"):
        env.update(
            IDP_AMQP_URL=config["IDP_AMQP_URL"], IDP_AMQP_EXCHANGE=config["IDP_AMQP_EXCHANGE"]
        )
    env.update(overrides)
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:  # the child keeps its own copy
        return subprocess.Popen(  # noqa: S603 - our own console script
            [IDP, "worker"], env=env, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill(process: subprocess.Popen[bytes], signum: int = signal.SIGKILL) -> int:
    if process.poll() is None:
        os.kill(process.pid, signum)
    return process.wait(timeout=30)
