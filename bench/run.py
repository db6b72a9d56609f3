"""Benchmark of the IdP under `idp serve` (gunicorn) on loopback.

    python bench/run.py                 # SQLite, the embedded default
    python bench/run.py --postgres      # PostgreSQL + Redis, the production shape
    python bench/run.py --write-readme  # also put the table into bench/README.md

It builds a throw-away instance (temporary directory; a temporary database with --postgres),
migrates it, creates a confidential client and a user through the `idp` command line, starts
`idp serve`, gets tokens through one real login and code flows, then drives each scenario with
the load generator in bench/loadgen.py. See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import FORM, RefreshChain, Requester, Result, basic_auth, form, run_load  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
CHECKOUT = BENCH_DIR.parent
README = BENCH_DIR / "README.md"
IDP = str(Path(sys.executable).with_name("idp"))
HOST = "127.0.0.1"
PHONE = "+8613700000000"
PASSWORD = "bench-" + secrets.token_urlsafe(12)
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never followed: the code is read off the redirect
SCENARIOS = ("client_credentials", "refresh_token", "userinfo", "introspection", "jwks")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Instance:
    url: str
    port: int
    env: dict[str, str]
    client_id: str
    client_secret: str
    server: subprocess.Popen[bytes] | None = None


@dataclass
class Measured:
    scenario: str
    result: Result
    duration: float
    server_cpu: float
    machine_cpu: float

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.result.statuses.items() if 200 <= status < 300)

    @property
    def failed(self) -> int:
        return self.result.errors + sum(
            n for status, n in self.result.statuses.items() if not 200 <= status < 300
        )

    def failures(self) -> str:
        """Failed requests, with their statuses: `12 (429×10, 500×2)`."""
        detail = [f"{status}×{n}" for status, n in sorted(self.result.statuses.items())
                  if not 200 <= status < 300]
        if self.result.errors:
            detail.append(f"socket×{self.result.errors}")
        return f"{self.failed} ({', '.join(detail)})" if detail else "0"

    def rate(self) -> float:
        return self.ok / self.duration

    def percentile(self, fraction: float) -> float:
        values = sorted(self.result.latencies)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(fraction * len(values)))] * 1000

    def per_request(self, cpu_seconds: float) -> float:
        return cpu_seconds * 1000 / max(1, len(self.result.latencies))


# --- set-up ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def idp(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    completed = subprocess.run(
        [IDP, *args], input=stdin, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"idp {' '.join(args)} failed: {completed.stderr.strip()}")
    return completed.stdout


@contextmanager
def database(args: argparse.Namespace, workdir: Path) -> Iterator[dict[str, str]]:
    """SQLite in the work directory, or a fresh PostgreSQL database (dropped after) + Redis."""
    if not args.postgres:
        yield {"IDP_DATABASE_URL": f"sqlite:///{workdir / 'idp.sqlite3'}"}
        return
    import psycopg
    import redis

    redis.Redis.from_url(args.redis_url).ping()
    name = "idp_bench_" + secrets.token_hex(4)
    admin_url = args.postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "IDP_DATABASE_URL": re.sub(r"/[^/]*$", f"/{name}", args.postgres_url),
            "IDP_REDIS_URL": args.redis_url,
        }
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(workdir: Path, port: int, db_env: dict[str, str]) -> Instance:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("IDP_") or key in ("IDP_SERVER", "IDP_SERVE_THREADS")}
    # The code measured is this checkout's, whatever the venv's editable install points at
    # and whatever the working directory (`idp serve` starts its workers with `python -m`,
    # which puts the working directory first): a worktree measures itself.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(CHECKOUT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(db_env)
    env.update(
        IDP_INSTANCE_PATH=str(workdir / "instance"),
        IDP_ISSUER=f"http://{HOST}:{port}",
        IDP_LOG_LEVEL="WARNING",
        # One client sends all the load: the per-client limit (default 200/s) would be the
        # figure measured instead of the server.
        IDP_TOKEN_RATE_LIMIT="1000000/second",
    )
    idp(env, "db", "upgrade")
    idp(env, "keys", "rotate")
    created = json.loads(
        idp(
            env, "clients", "create", "--name", "bench", "--first-party",
            "--redirect-uri", REDIRECT_URI,
            "--grant-type", "authorization_code", "--grant-type", "refresh_token",
            "--grant-type", "client_credentials",
            "--scope", "openid profile phone email offline_access", "--json",
        )
    )
    idp(env, "users", "create", "--phone", PHONE, "--name", "Bench", "--password-stdin",
        stdin=PASSWORD + "\n")
    return Instance(f"http://{HOST}:{port}", port, env, created["client_id"],
                    created["client_secret"])


def start_server(instance: Instance, args: argparse.Namespace, log: Path) -> None:
    env = dict(instance.env)
    overrides = []
    if args.worker_class or args.threads:
        env["IDP_SERVER"] = "gunicorn"  # the flags below are gunicorn's
    if args.worker_class:
        overrides.append(f"--worker-class {args.worker_class}")
    if args.threads:
        overrides.append(f"--threads {args.threads}")
    if overrides:
        env["GUNICORN_CMD_ARGS"] = " ".join(overrides)
    with log.open("wb") as output:
        workers = ["--workers", str(args.workers)] if args.workers else []
        instance.server = subprocess.Popen(
            [IDP, "serve", "--host", HOST, "--port", str(instance.port), *workers],
            env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=CHECKOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if instance.server.poll() is not None:
            raise SystemExit(f"idp serve exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{instance.url}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("idp serve did not become ready in 60 s")


def stop_server(instance: Instance) -> None:
    if instance.server and instance.server.poll() is None:
        os.killpg(instance.server.pid, signal.SIGTERM)
        try:
            instance.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(instance.server.pid, signal.SIGKILL)


def user_tokens(instance: Instance, count: int) -> list[dict[str, Any]]:
    """One password login (argon2 is slow on purpose: not part of any scenario), then `count`
    code flows with PKCE riding on the IdP session, each giving an access and a refresh token."""
    browser = requests.Session()
    page = browser.get(f"{instance.url}/login", timeout=10)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert csrf, "no CSRF token on the login page"
    logged_in = browser.post(
        f"{instance.url}/login",
        data={"identifier": PHONE, "password": PASSWORD, "next": "", "csrf_token": csrf.group(1)},
        allow_redirects=False, timeout=30,
    )
    assert logged_in.status_code == 302, logged_in.text[:500]
    return [code_flow(instance, browser) for _ in range(count)]


def code_flow(instance: Instance, browser: requests.Session) -> dict[str, Any]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    answer = browser.get(
        f"{instance.url}/oauth/authorize",
        params={
            "response_type": "code", "client_id": instance.client_id,
            "redirect_uri": REDIRECT_URI, "scope": "openid profile phone offline_access",
            "state": secrets.token_hex(4), "nonce": secrets.token_hex(4),
            "code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256",
        },
        allow_redirects=False, timeout=10,
    )
    assert answer.status_code == 302, answer.text[:500]
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    token = requests.post(
        f"{instance.url}/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
              "code_verifier": verifier},
        auth=(instance.client_id, instance.client_secret), timeout=10,
    )
    assert token.status_code == 200, token.text[:500]
    return token.json()


# --- scenarios -------------------------------------------------------------------------------


def requesters(scenario: str, instance: Instance, tokens: list[dict[str, Any]]) -> list[Requester]:
    client_auth = {"Authorization": basic_auth(instance.client_id, instance.client_secret),
                   "Content-Type": FORM}
    if scenario == "client_credentials":
        body = form({"grant_type": "client_credentials"})
        return [Requester("POST", "/oauth/token", client_auth, body) for _ in tokens]
    if scenario == "refresh_token":
        return [RefreshChain("POST", "/oauth/token", client_auth, None, t["refresh_token"])
                for t in tokens]
    if scenario == "userinfo":
        return [Requester("GET", "/oauth/userinfo",
                          {"Authorization": f"Bearer {t['access_token']}"}) for t in tokens]
    if scenario == "introspection":
        return [Requester("POST", "/oauth/introspect", client_auth,
                          form({"token": t["access_token"]})) for t in tokens]
    if scenario == "jwks":
        return [Requester("GET", "/oauth/jwks") for _ in tokens]
    raise SystemExit(f"unknown scenario {scenario!r}")


def process_cpu(pid: int) -> float:
    """utime + stime of one process, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def server_pids(master: int) -> list[int]:
    pids = [master]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat[1]) == master:
                pids.append(int(entry.name))
    return pids


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine (every core), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def measure(scenario: str, instance: Instance, tokens: list[dict[str, Any]],
            args: argparse.Namespace) -> Measured:
    assert instance.server is not None
    master = instance.server.pid
    marks: dict[str, tuple[float, float]] = {}

    def sample(event: str) -> None:
        # Workers are listed at each edge: gunicorn may have restarted one in between.
        marks[event] = (sum(process_cpu(pid) for pid in server_pids(master)), machine_cpu())

    result = run_load(HOST, instance.port, requesters(scenario, instance, tokens),
                      args.processes, args.warmup, args.duration, on_window=sample)
    return Measured(
        scenario, result, args.duration,
        server_cpu=marks["end"][0] - marks["start"][0],
        machine_cpu=marks["end"][1] - marks["start"][1],
    )


# --- report ----------------------------------------------------------------------------------


def table(rows: list[Measured]) -> str:
    lines = [
        "| scenario | requests/s | p50 ms | p99 ms | server CPU ms/req | machine CPU ms/req "
        "| load-gen CPU ms/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.scenario} | {row.rate():,.0f} | {row.percentile(0.5):.1f} "
            f"| {row.percentile(0.99):.1f} | {row.per_request(row.server_cpu):.2f} "
            f"| {row.per_request(row.machine_cpu):.2f} "
            f"| {row.result.cpu_seconds * 1000 / max(1, row.result.sent):.2f} | {row.failures()} |"
        )
    return "\n".join(lines)


def describe(args: argparse.Namespace) -> str:
    from idp.operations import gunicorn_conf

    store = "PostgreSQL + Redis" if args.postgres else "SQLite (WAL), no Redis"
    if args.worker_class or args.threads or os.environ.get("IDP_SERVER") == "gunicorn":
        worker_class = args.worker_class or gunicorn_conf.worker_class
        threads = args.threads or gunicorn_conf.threads
        workers = (f"gunicorn {worker_class} workers × {threads} threads"
                   if worker_class == "gthread" else f"gunicorn {worker_class} workers")
    else:
        workers = "granian workers"
    return (
        f"{store}; `idp serve --workers {args.workers}` ({workers}); "
        f"{args.connections} connections from {args.processes} load-generator processes; "
        f"{args.duration:g} s per scenario after {args.warmup:g} s warm-up; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )


def write_readme(args: argparse.Namespace, rows: list[Measured]) -> None:
    key = "postgres" if args.postgres else "sqlite"
    block = f"<!-- results:{key} -->\n{describe(args)}\n\n{table(rows)}\n<!-- /results:{key} -->"
    text = README.read_text() if README.exists() else ""
    pattern = re.compile(rf"<!-- results:{key} -->.*?<!-- /results:{key} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _match: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    README.write_text(text)


def main(argv: list[str] | None = None) -> None:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "IDP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
        help="a database to connect to for CREATE DATABASE")
    parser.add_argument("--redis-url", default=os.environ.get(
        "IDP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--workers", type=int, default=cpus + 1)  # what `idp serve` uses
    parser.add_argument("--worker-class", choices=["sync", "gthread"],
                        help="override idp/operations/gunicorn_conf.py (to compare)")
    parser.add_argument("--threads", type=int, help="gthread threads per worker")
    parser.add_argument("--connections", type=int, default=4 * cpus + 2)
    parser.add_argument("--processes", type=int, default=cpus)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS,
                        help="repeat to pick several; default: all")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    instance: Instance | None = None
    try:
        with database(args, workdir) as db_env:
            instance = prepare(workdir, free_port(), db_env)
            start_server(instance, args, workdir / "serve.log")
            tokens = user_tokens(instance, args.connections)
            print(describe(args), flush=True)
            rows = []
            for scenario in args.scenario or SCENARIOS:
                rows.append(measure(scenario, instance, tokens, args))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
            stop_server(instance)
    finally:
        if instance is not None:
            stop_server(instance)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(rows))
    if args.write_readme:
        write_readme(args, rows)
        print(f"\nwritten to {README.relative_to(BENCH_DIR.parent)}")


if __name__ == "__main__":
    main()

