"""What `idp serve` runs: granian (default) or gunicorn (`IDP_SERVER=gunicorn`), the worker
count, the metrics directory."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

GUNICORN_CONFIG = "python:idp.operations.gunicorn_conf"
SERVERS = ("granian", "gunicorn")
MAX_DEFAULT_WORKERS = 8


def default_worker_count() -> int:
    """granian: one worker per CPU, capped. Its workers run only the app's Python (HTTP is
    handled in Rust), so one process per core keeps every core busy; 2 workers measured ~10 %
    more throughput and less CPU per request than 3 on 2 cores (bench/README.md).

    gunicorn (`IDP_SERVER=gunicorn`): CPUs + 1, not its 2 x CPUs + 1 for sync workers: ours are
    threaded (gthread), and fewer processes measured ~15 % more throughput on 2 cores.
    Beyond the cap the database connections (pool of 10 + 20 overflow per worker) cost more
    than the extra workers bring."""
    cpus = os.cpu_count() or 1
    wanted = cpus + 1 if server_name() == "gunicorn" else cpus
    return max(1, min(wanted, MAX_DEFAULT_WORKERS))


def prepare_metrics_directory(instance_path: str) -> Path:
    """A fresh, empty directory for prometheus-client's multiprocess files.

    Named after this process's id, which gunicorn's master keeps (`idp serve` execs it), so that
    directories left by a master that died without cleaning up can be recognised and removed.
    """
    parent = Path(instance_path) / "prometheus"
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.iterdir():
        if stale.is_dir() and stale.name.isdigit() and not _alive(int(stale.name)):
            shutil.rmtree(stale, ignore_errors=True)
    directory = parent / str(os.getpid())
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    return directory


def server_name() -> str:
    """`IDP_SERVER`: granian unless told otherwise (bench/README.md compares the two)."""
    name = os.environ.get("IDP_SERVER", "granian").strip().lower() or "granian"
    if name not in SERVERS:
        raise ValueError(f"IDP_SERVER must be one of {', '.join(SERVERS)}, not {name!r}")
    return name


def server_argv(host: str, port: int, workers: int) -> list[str]:
    if server_name() == "gunicorn":
        return gunicorn_argv(host, port, workers)
    return granian_argv(host, port, workers)


def granian_argv(host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "idp.operations.granian_main",
        "--host", host, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


def gunicorn_argv(host: str, port: int, workers: int) -> list[str]:
    # gunicorn of this interpreter: `.venv/bin/idp serve` works without an activated venv.
    return [
        sys.executable, "-m", "gunicorn",
        "--config", GUNICORN_CONFIG,
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "idp:create_app()",
    ]  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
