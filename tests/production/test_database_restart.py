"""A PostgreSQL restart while serving is survived (docs/DEPLOYMENT.md, "When PostgreSQL
restarts"): the pool checks a connection before handing it out (`idp.pool_liveness`: the
server's goodbye waiting on an idle socket, no round trip), so the first request after a restart
gets a fresh one.

The machine's shared PostgreSQL is never touched: the test starts a private cluster of its own
(initdb into a temporary directory, a free loopback port, a private socket directory), restarts
and stops *that* one, and always stops it at the end. As root, the server binaries run as the
`postgres` system user (PostgreSQL refuses root). Skipped, with the reason, when the server
binaries or that user are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from idp import create_app
from idp.extensions import db
from tests.conftest import PASSWORD, base_config
from tests.production.conftest import PHONE, browser_login, free_port

CTL_SECONDS = 20  # pg_ctl -t: the longest any start/stop/restart may wait
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")


def _bindir() -> Path | None:
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        try:
            found = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10
            )
            candidates.append(Path(found.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(
        (Path(p) for p in versions),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in SERVER_BINARIES):
            return directory
    return None


def _as_postgres() -> tuple[list[str] | None, pwd.struct_passwd | None, str | None]:
    """(argv prefix, the user) to run a server binary with, or the reason it cannot run."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        return None, None, "running as root and there is no `postgres` system user"
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--"], user, None
    if shutil.which("su"):
        return ["su", "postgres", "-s", "/bin/sh", "-c"], user, None
    return None, None, "running as root and neither runuser nor su is available"


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster: data, socket and log under one temporary directory."""

    bindir: Path
    base: Path
    port: int
    prefix: list[str]

    @property
    def data(self) -> Path:
        return self.base / "data"

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / name), *args]
        if self.prefix[:1] == ["su"]:
            argv = [*self.prefix, shlex.join(argv)]
        else:
            argv = [*self.prefix, *argv]
        # cwd: a directory the postgres user may enter; pg_ctl always logs to a file (-l), so
        # the server never holds our pipes open.
        return subprocess.run(
            argv, cwd=self.base, capture_output=True, text=True, timeout=CTL_SECONDS + 30
        )

    def ctl(self, action: str, *args: str) -> None:
        result = self.run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.base / "server.log"),
            "-w", "-t", str(CTL_SECONDS), *args,
        )  # fmt: skip
        assert result.returncode == 0, f"pg_ctl {action}: {result.stderr}\n{self.log_tail()}"

    def start(self) -> None:
        self.ctl(
            "start",
            "-o",
            f"-p {self.port} -h 127.0.0.1 -k {self.base / 'sock'} -c fsync=off",
        )

    def log_tail(self) -> str:
        log = self.base / "server.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (pg_config --bindir, /usr/lib/postgresql)")
    prefix, user, reason = _as_postgres()
    if prefix is None:
        pytest.skip(reason or "cannot run the PostgreSQL server binaries")
    # Not pytest's tmp_path: its root is private to this user (0700), where the postgres user
    # cannot enter, and a socket path must stay under ~100 characters.
    base = Path(tempfile.mkdtemp(prefix="idp-pg-"))
    cluster = PrivatePostgres(bindir, base, free_port(), prefix)
    (base / "sock").mkdir()
    if user is not None:
        for path in (base, base / "sock"):
            os.chown(path, user.pw_uid, user.pw_gid)
    try:
        initialized = cluster.run(
            "initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        assert initialized.returncode == 0, initialized.stderr
        cluster.start()
        engine = sa.create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text('CREATE DATABASE "idp"'))
        engine.dispose()
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster.run("pg_ctl", "stop", "-D", str(cluster.data), "-m", "immediate", "-w")
        shutil.rmtree(base, ignore_errors=True)


def _liveness_check(engine: Any) -> Any:
    """The checkout listener `idp.pool_liveness` installed (what this test is about)."""
    listeners = [fn for fn in engine.pool.dispatch.checkout
                 if getattr(fn, "__module__", "") == "idp.pool_liveness"]
    assert listeners, "no liveness check on the pool"
    return listeners[0]


@dataclass
class Served:
    url: str
    auth: tuple[str, str]  # a client_credentials client's id and secret


@pytest.fixture
def served(private_postgres: PrivatePostgres, tmp_path: Path) -> Iterator[Served]:
    """The app on the private cluster, served by a threaded WSGI server, with a user and a
    client; the test runs inside the app's context (it looks at the pool)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    config = {**base_config(tmp_path, private_postgres.url("idp")), "IDP_ISSUER": base_url}
    app = create_app(config)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="idp-test-server", daemon=True)
    with app.app_context():
        try:
            _liveness_check(db.engine)
            db.create_all()
            from idp.accounts.seed import create_password_user
            from idp.oidc.clients import create_client

            create_password_user(PHONE, PASSWORD)
            client, secret = create_client(
                name="Restart", grant_types=["client_credentials"], scope="openid"
            )
            assert secret is not None
            auth = (client.client_id, secret)
            db.session.commit()
            db.session.remove()
            thread.start()
            yield Served(base_url, auth)
        finally:
            if thread.is_alive():
                server.shutdown()
                thread.join(timeout=10)
            server.server_close()
            db.session.remove()
            db.engine.dispose()


def _token(served: Served, http: Any = requests) -> requests.Response:
    return http.post(
        f"{served.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=served.auth,
        timeout=10,
    )


def _assert_token(response: requests.Response) -> None:
    assert response.status_code == 200, response.text[:500]
    assert response.json()["token_type"].lower() == "bearer"


def _assert_ready(http: requests.Session, base_url: str) -> None:
    response = http.get(f"{base_url}/readyz", timeout=10)
    assert response.status_code == 200, response.text[:500]
    assert response.json() == {"status": "ok", "database": "ok"}


def _sign_in(base_url: str) -> None:
    """A request that writes (a session row), in a browser of its own."""
    with requests.Session() as browser:
        browser_login(browser, base_url)


def _fill_the_pool(connections: int) -> None:
    """Leave `connections` idle connections in the app's pool, all to the running server."""
    held = [db.engine.connect() for _ in range(connections)]
    for connection in held:
        connection.execute(sa.text("SELECT 1"))
    for connection in held:
        connection.close()
    assert db.engine.pool.checkedin() >= connections  # type: ignore[attr-defined]


def test_a_postgresql_restart_while_serving_is_survived(
    private_postgres: PrivatePostgres, served: Served
) -> None:
    with requests.Session() as http:
        _assert_token(_token(served, http))
        _assert_ready(http, served.url)
        _fill_the_pool(5)

        # Restart: every pooled connection now points at a server process that is gone.
        private_postgres.ctl("restart", "-m", "fast")
        first = _token(served, http)
        assert first.status_code < 500, first.text[:500]
        _assert_token(first)
        _assert_ready(http, served.url)
        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(lambda _: _token(served).status_code, range(12)))
        assert statuses == [200] * 12
        _sign_in(served.url)

        # Down: not ready, and the token endpoint answers the RFC 6749 JSON error, no trace.
        private_postgres.ctl("stop", "-m", "fast")
        assert http.get(f"{served.url}/healthz", timeout=10).status_code == 200
        ready = http.get(f"{served.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["database"] == "unreachable"
        down = _token(served, http)
        assert down.status_code == 503 and down.headers["Retry-After"]
        assert down.headers["Content-Type"].startswith("application/json")
        body = down.json()
        assert body["error"] == "temporarily_unavailable" and body.get("request_id")
        assert "Traceback" not in down.text and "postgres" not in down.text.lower()

        # Up again: everything works, from the first request on.
        private_postgres.start()
        _assert_token(_token(served, http))
        _assert_ready(http, served.url)
        _sign_in(served.url)


def test_the_liveness_check_takes_a_descriptor_past_1024(tmp_path: Path) -> None:
    """A busy process holds more than FD_SETSIZE descriptors; `select()` refused those
    (`ValueError: filedescriptor out of range`), so the check must not use it."""
    import resource
    import socket as sockets

    from idp.pool_liveness import has_news

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"the descriptor limit ({hard}) is below 1100")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    quiet, talking = sockets.socketpair()
    try:
        high = os.dup2(quiet.fileno(), 1050)

        class Idle:
            class pgconn:  # noqa: N801 - psycopg's attribute name
                socket = high

        assert has_news(Idle()) is False
        talking.send(b"goodbye")
        assert has_news(Idle()) is True
        os.close(high)
    finally:
        quiet.close()
        talking.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
