"""A small closed-loop HTTP load generator: processes × threads, one keep-alive connection each.

Pure standard library (http.client, multiprocessing), so `make bench` needs nothing beyond the
project's own dependencies. Every connection runs one request at a time (closed loop): the
request rate is what the server sustains, and latency includes queueing at the server.
A server that answers `Connection: close` (gunicorn's sync workers do) costs a reconnect per
request, which is what a real client of such a server pays too.
"""

from __future__ import annotations

import base64
import http.client
import json
import multiprocessing
import resource
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


@dataclass
class Requester:
    """One connection's script; subclasses change the request after each answer."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def request(self) -> tuple[str, str, bytes | None, dict[str, str]]:
        return self.method, self.path, self.body, self.headers

    def answered(self, status: int, body: bytes) -> None:
        pass


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def form(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


FORM = "application/x-www-form-urlencoded"


@dataclass
class RefreshChain(Requester):
    """refresh_token grant: each answer's new refresh token is used for the next request
    (rotation on every use), so every connection walks its own token family."""

    refresh_token: str = ""

    def request(self) -> tuple[str, str, bytes | None, dict[str, str]]:
        body = form({"grant_type": "refresh_token", "refresh_token": self.refresh_token})
        return self.method, self.path, body, self.headers

    def answered(self, status: int, body: bytes) -> None:
        if status == 200:
            self.refresh_token = json.loads(body)["refresh_token"]


@dataclass
class Result:
    latencies: list[float]
    statuses: dict[int, int]
    errors: int
    cpu_seconds: float
    # Every request sent, warm-up included: the load generator's CPU is spent on all of them.
    sent: int = 0


def _connection_loop(
    host: str, port: int, requester: Requester, start: float, end: float, out: list[Any]
) -> None:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = sent = 0
    connection = http.client.HTTPConnection(host, port, timeout=30)
    while True:
        began = time.monotonic()
        if began >= end:
            break
        sent += 1
        method, path, body, headers = requester.request()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()
            continue
        finished = time.monotonic()
        requester.answered(response.status, payload)
        if response.will_close:
            connection.close()
        if began >= start:
            latencies.append(finished - began)
            statuses[response.status] = statuses.get(response.status, 0) + 1
    connection.close()
    out.append((latencies, statuses, errors, sent))


def _process_main(
    host: str, port: int, requesters: list[Requester], start: float, end: float, queue: Any
) -> None:
    outputs: list[Any] = []
    threads = [
        threading.Thread(target=_connection_loop, args=(host, port, r, start, end, outputs))
        for r in requesters
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = sent = 0
    for chunk, chunk_statuses, chunk_errors, chunk_sent in outputs:
        latencies.extend(chunk)
        errors += chunk_errors
        sent += chunk_sent
        for status, count in chunk_statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put(Result(latencies, statuses, errors, usage.ru_utime + usage.ru_stime, sent))


def run_load(
    host: str,
    port: int,
    requesters: list[Requester],
    processes: int,
    warmup: float,
    duration: float,
    on_window: Any = None,
) -> Result:
    """Runs every requester on its own connection; measures the `duration` after `warmup`.

    `on_window(event)` is called with "start" and "end" at the edges of the measured window,
    so the caller can sample CPU counters exactly there.
    """
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    begin = time.monotonic() + 0.3  # let every process start first
    start, end = begin + warmup, begin + warmup + duration
    shares = [requesters[index::processes] for index in range(processes)]
    workers = [
        context.Process(target=_process_main, args=(host, port, share, start, end, queue))
        for share in shares
        if share
    ]
    for worker in workers:
        worker.start()
    if on_window:
        time.sleep(max(0.0, start - time.monotonic()))
        on_window("start")
        time.sleep(max(0.0, end - time.monotonic()))
        on_window("end")
    results = [queue.get(timeout=duration + warmup + 120) for _ in workers]
    for worker in workers:
        worker.join()
    merged = Result([], {}, 0, 0.0)
    for result in results:
        merged.latencies.extend(result.latencies)
        merged.errors += result.errors
        merged.cpu_seconds += result.cpu_seconds
        merged.sent += result.sent
        for status, count in result.statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + count
    return merged
