"""`idp serve` under slow clients and after its master is killed (issue 13 item 5, issue 17
item 7). One real `idp serve` (granian, 2 workers) on a migrated SQLite database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.production.conftest import IDP, free_port

STARTUP_SECONDS = 60


def _environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PROMETHEUS_"))}
    env.update(
        IDP_DATABASE_URL=f"sqlite:///{tmp / 'idp.sqlite3'}",
        IDP_INSTANCE_PATH=str(tmp / "instance"),
        IDP_SECRET_KEY="resilience-secret-key",
        IDP_ENCRYPTION_KEY="resilience-encryption-key",
        IDP_EVENT_DELIVERY="external",
        IDP_LOG_LEVEL="WARNING",
    )
    return env


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        process = subprocess.Popen(
            [IDP, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"idp serve exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"idp serve not ready in {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_group(process: subprocess.Popen[bytes], pids: list[int]) -> None:
    for pid in [process.pid, *pids]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    tmp = tmp_path_factory.mktemp("resilience")
    env = _environment(tmp)
    result = subprocess.run(
        [IDP, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    yield env, tmp


def test_slow_clients_do_not_stop_others_from_being_served(
    instance: tuple[dict[str, str], Path],
) -> None:
    """Connections that trickle their headers one byte at a time hold no Python thread: more
    of them than the server has threads (2 workers x 4) leave other clients served at once."""
    env, tmp = instance
    port = free_port()
    process = _start(env, port, tmp / "slow.log")
    workers = _children(process.pid)
    stop = threading.Event()
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            for byte in request:
                if stop.is_set():
                    return
                slow.sendall(bytes([byte]))
                time.sleep(0.05)

    slow_clients = [threading.Thread(target=trickle, daemon=True) for _ in range(24)]
    try:
        for thread in slow_clients:
            thread.start()
        time.sleep(1)  # every slow client is connected and mid-headers
        latencies = []
        end = time.monotonic() + 4
        with requests.Session() as http:
            while time.monotonic() < end:
                started = time.monotonic()
                response = http.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                latencies.append(time.monotonic() - started)
                assert response.status_code == 200
        assert len(latencies) >= 20, latencies
        assert max(latencies) < 1.0, max(latencies)
        assert all(thread.is_alive() for thread in slow_clients)  # still trickling throughout
    finally:
        stop.set()
        _kill_group(process, workers)


def test_a_killed_master_takes_its_workers_and_a_restart_binds_at_once(
    instance: tuple[dict[str, str], Path],
) -> None:
    """After `kill -9` of the master no orphaned worker keeps the port or a keep-alive
    connection: the restart on the same port serves at once, only from new processes."""
    env, tmp = instance
    port = free_port()
    first = _start(env, port, tmp / "first.log")
    workers = _children(first.pid)
    assert len(workers) == 2, workers
    kept_alive = requests.Session()
    assert kept_alive.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    second = None
    try:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if _alive(pid)], "orphaned workers still running"
        with pytest.raises(requests.ConnectionError):  # the orphan closed it when it left
            kept_alive.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        second = _start(env, port, tmp / "second.log")
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        kept_alive.close()
        _kill_group(first, workers)
        if second is not None:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(timeout=40)


def _status_for_header(port: int, size: int) -> bytes:
    """The status line `idp serve` answers to one header of `size` bytes."""
    request = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * size
               + b"\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        try:
            connection.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it was all sent: the answer is already waiting
        return connection.recv(200).split(b"\r\n", 1)[0]


def test_oversized_request_headers_are_431__rfc6585_5(
    instance: tuple[dict[str, str], Path],
) -> None:
    """`idp serve`'s own listener refuses a request head over 16 kB (granian accepted 256 kB,
    issue 23 item 7); ordinary heads and large bodies are untouched (the body has its own limit,
    413 from the app)."""
    env, tmp = instance
    port = free_port()
    process = _start(env, port, tmp / "headers.log")
    workers = _children(process.pid)
    try:
        assert _status_for_header(port, 15_000) == b"HTTP/1.1 200 OK"
        for size in (17_000, 256 * 1024, 1024 * 1024):
            assert _status_for_header(port, size) == (
                b"HTTP/1.1 431 Request Header Fields Too Large"), size
        body = requests.post(f"http://127.0.0.1:{port}/oauth/token", data=b"a=" + b"b" * 2**21,
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             timeout=10)
        assert body.status_code == 413
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        _kill_group(process, workers)
