"""Real `idp serve` processes on PostgreSQL + Redis, for the "many processes, one IdP" tests.

Skipped, with the reason, when PostgreSQL or Redis does not answer. Every process started here
is killed at the end, by its process group, whatever happened.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import POSTGRES_SKIP_REASON, create_database, drop_database
from tests.redis_db import redis_url

REDIS_URL = redis_url(11)
IDP = str(Path(sys.executable).with_name("idp"))
PASSWORD = "correct horse battery"
PHONE = "+8613900139000"
REDIRECT_URI = "https://rp.example/callback"
STARTUP_SECONDS = 30


def redis_skip_reason() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as error:  # noqa: BLE001
        return f"Redis not reachable at IDP_TEST_REDIS_URL ({type(error).__name__})"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lasting_port() -> int:
    """A free loopback port below the kernel's ephemeral range, for a server that binds it
    minutes after it is chosen (an image built first): meanwhile no outgoing connection and no
    other test's `free_port()` is given a port from there."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    chooser = random.Random()
    for _ in range(200):
        port = chooser.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()


@dataclass
class Cluster:
    """Two `idp serve` processes over one database and one Redis, behind one issuer."""

    issuer: str
    urls: list[str]
    env: dict[str, str]
    client_id: str = ""
    client_secret: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [IDP, *args], env=self.env, input=stdin, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout


def _environment(
    tmp: Path, database_url: str, issuer: str, overrides: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PROMETHEUS_"))}
    env.update(
        IDP_ISSUER=issuer,
        IDP_DATABASE_URL=database_url,
        IDP_REDIS_URL=REDIS_URL,
        IDP_INSTANCE_PATH=str(tmp / "instance"),
        IDP_SECRET_KEY="two-process-secret-key",
        IDP_ENCRYPTION_KEY="two-process-encryption-key",
        IDP_KEY_CACHE_SECONDS="2",
        IDP_JWKS_MAX_AGE="3",
        IDP_KEY_SIGN_MARGIN_SECONDS="1",
        IDP_ARGON2_TIME_COST="1",
        IDP_ARGON2_MEMORY_COST="1024",
        IDP_ARGON2_PARALLELISM="1",
        IDP_TOKEN_RATE_LIMIT="60/minute",
        IDP_EVENT_DELIVERY="external",
        IDP_LOG_LEVEL="WARNING",
    )
    env.update(overrides)
    return env


def _wait_until_ready(cluster: Cluster) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    for url, process in zip(cluster.urls, cluster.processes, strict=True):
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"idp serve exited with {process.returncode}")
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"idp serve at {url} not ready in {STARTUP_SECONDS} s")
            time.sleep(0.2)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster_settings() -> dict[str, str]:
    """Environment overrides for a module's cluster (a module redefines this fixture)."""
    return {}


@dataclass
class Seed:
    """The database and instance directory every cluster of a worker starts from."""

    database_url: str
    instance: Path
    client_id: str
    client_secret: str


@pytest.fixture(scope="session")
def cluster_seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seed]:
    """`idp db upgrade`, the user and the client, by the CLI once per worker (each command a
    process of its own, about 3 s of start-up): each module's cluster copies the database
    (CREATE DATABASE … TEMPLATE) and the instance directory (its generated personal-data keys)."""
    reason = POSTGRES_SKIP_REASON or redis_skip_reason()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("cluster-seed")
    database_url = create_database(f"idp_prod_seed_{os.getpid()}")
    cli = Cluster("http://127.0.0.1:5000", [], {})
    cli.env = _environment(tmp, database_url, cli.issuer, {})
    try:
        cli.cli("db", "upgrade")
        cli.cli("users", "create", "--phone", PHONE, "--password-stdin", stdin=PASSWORD + "\n")
        created = json.loads(
            cli.cli(
                "clients", "create", "--name", "Two processes", "--first-party",
                "--redirect-uri", REDIRECT_URI,
                "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                "--grant-type", "client_credentials",
                "--scope", "openid profile phone offline_access", "--json",
            )
        )  # fmt: skip
        yield Seed(database_url, tmp / "instance", created["client_id"], created["client_secret"])
    finally:
        drop_database(database_url)


@pytest.fixture(scope="module")  # the servers die as soon as the module's tests are done
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    cluster_settings: dict[str, str],
    cluster_seed: Seed,
) -> Iterator[Cluster]:
    # A fresh Redis database for each cluster (IDP_TEST_REDIS_URL names one kept for tests): an
    # earlier run's hourly and daily SMS and login counts must not refuse this run's requests.
    import redis

    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).flushdb()
    tmp = tmp_path_factory.mktemp("cluster")
    shutil.copytree(cluster_seed.instance, tmp / "instance")
    seed_name = sa.engine.make_url(cluster_seed.database_url).database or ""
    database_url = create_database(f"idp_prod_test_{os.getpid()}", template=seed_name)
    ports = [free_port(), free_port()]
    issuer = f"http://127.0.0.1:{ports[0]}"
    cluster = Cluster(issuer, [f"http://127.0.0.1:{port}" for port in ports], {})
    cluster.env = _environment(tmp, database_url, issuer, cluster_settings)
    cluster.client_id, cluster.client_secret = cluster_seed.client_id, cluster_seed.client_secret
    try:
        for index, port in enumerate(ports):
            with (tmp / f"serve-{index}.log").open("wb") as log:
                cluster.processes.append(
                    subprocess.Popen(
                        [IDP, "serve", "--host", "127.0.0.1", "--port", str(port),
                         "--workers", "2"],
                        env=cluster.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # one process group: gunicorn and its workers
                    )
                )  # fmt: skip
        _wait_until_ready(cluster)
        yield cluster
    finally:
        _stop(cluster.processes)
        drop_database(database_url)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def browser_login(browser: requests.Session, base: str) -> None:
    page = browser.get(f"{base}/login", timeout=10)
    response = browser.post(
        f"{base}/login",
        data={"identifier": PHONE, "password": PASSWORD, "next": "",
              "csrf_token": csrf_token(page.text)},
        allow_redirects=False,
        timeout=10,
    )  # fmt: skip
    assert response.status_code in (302, 303), response.text[:500]


def authorization_code(
    browser: requests.Session, base: str, cluster: Cluster, **extra: Any
) -> tuple[str, str]:
    """A code from the authorization endpoint at `base`, with its PKCE verifier."""
    from tests.conftest import pkce_pair, query_of

    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": cluster.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile offline_access",
        "state": "s-" + os.urandom(4).hex(),
        "nonce": "n-" + os.urandom(4).hex(),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    response = browser.get(f"{base}/oauth/authorize", params=params, allow_redirects=False,
                           timeout=10)  # fmt: skip
    assert response.status_code == 302, response.text[:500]
    found = query_of(response.headers["Location"])
    assert "code" in found, found
    return found["code"], verifier


def redeem(base: str, cluster: Cluster, code: str, verifier: str) -> requests.Response:
    return requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
              "code_verifier": verifier},
        auth=(cluster.client_id, cluster.client_secret),
        timeout=10,
    )  # fmt: skip


def refresh(base: str, cluster: Cluster, refresh_token: str) -> requests.Response:
    return requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(cluster.client_id, cluster.client_secret),
        timeout=10,
    )
