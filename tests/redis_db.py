"""The Redis database a test module uses, one set per pytest-xdist worker.

Each module that needs Redis names its own database (IDP_TEST_REDIS_URL overrides it); workers
run side by side (`-n`), and some tests flush their database or count throttles in it, so each
worker shifts every database by 4: the modules' databases (2, 11, 12, 13) stay distinct for up
to four workers (the suite's `--maxprocesses`)."""

from __future__ import annotations

import os

DATABASES = 16
SHIFT = 4


def worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def redis_url(default_db: int) -> str:
    url = os.environ.get("IDP_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{default_db}")
    base, _, db = url.rpartition("/")
    if not db.isdigit() or "://" not in base:
        return url
    return f"{base}/{(int(db) + SHIFT * worker_index()) % DATABASES}"
