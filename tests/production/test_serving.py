"""What `idp serve` hands gunicorn, and the app behind a TLS-terminating proxy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from flask import request

from idp import create_app
from idp.observability import metrics  # noqa: F401 - prometheus-client chose its mode on import
from idp.operations import gunicorn_conf, serving
from tests.conftest import base_config


@pytest.mark.parametrize("cpus, expected", [(1, 1), (2, 2), (3, 3), (16, 8), (None, 1)])
def test_default_worker_count(monkeypatch: Any, cpus: int | None, expected: int) -> None:
    monkeypatch.delenv("IDP_SERVER", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert serving.default_worker_count() == expected


@pytest.mark.parametrize("cpus, expected", [(1, 2), (2, 3), (3, 4), (16, 8), (None, 2)])
def test_default_worker_count_under_gunicorn(
    monkeypatch: Any, cpus: int | None, expected: int
) -> None:
    monkeypatch.setenv("IDP_SERVER", "gunicorn")
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert serving.default_worker_count() == expected


def test_idp_serve_runs_granian_unless_told_otherwise(monkeypatch: Any) -> None:
    monkeypatch.delenv("IDP_SERVER", raising=False)
    assert serving.server_argv("127.0.0.1", 8000, 2)[1:3] == ["-m", "idp.operations.granian_main"]
    monkeypatch.setenv("IDP_SERVER", "gunicorn")
    assert serving.server_argv("127.0.0.1", 8000, 2)[1:3] == ["-m", "gunicorn"]
    monkeypatch.setenv("IDP_SERVER", "uwsgi")
    with pytest.raises(ValueError):
        serving.server_argv("127.0.0.1", 8000, 2)


def test_serve_threads_come_from_the_environment(monkeypatch: Any) -> None:
    from idp.operations import granian_main

    monkeypatch.delenv("IDP_SERVE_THREADS", raising=False)
    assert granian_main.blocking_threads() == granian_main.BLOCKING_THREADS
    monkeypatch.setenv("IDP_SERVE_THREADS", "16")
    assert granian_main.blocking_threads() == 16
    for wrong in ("0", "-1", "ten", "１６", "1000"):
        monkeypatch.setenv("IDP_SERVE_THREADS", wrong)
        with pytest.raises(SystemExit, match="IDP_SERVE_THREADS"):
            granian_main.blocking_threads()


def test_gunicorn_runs_with_the_package_configuration() -> None:
    argv = serving.gunicorn_argv("127.0.0.1", 8000, 3)
    assert argv[argv.index("--config") + 1] == "python:idp.operations.gunicorn_conf"
    assert argv[-1] == "idp:create_app()"
    assert gunicorn_conf.control_socket_disable is True
    assert gunicorn_conf.accesslog is None


def test_the_metrics_directory_is_fresh_and_stale_ones_go(tmp_path: Path) -> None:
    parent = tmp_path / "prometheus"
    stale = parent / "999999999"  # no such process
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"old")
    mine = parent / str(os.getpid())
    mine.mkdir()
    (mine / "counter_2.db").write_bytes(b"old")
    directory = serving.prepare_metrics_directory(str(tmp_path))
    assert directory == mine
    assert list(directory.iterdir()) == []
    assert not stale.exists()


def test_a_dead_worker_is_marked_in_multiprocess_mode(tmp_path: Path, monkeypatch: Any) -> None:
    marked: list[int] = []
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(
        "prometheus_client.multiprocess.mark_process_dead",
        lambda pid, path=None: marked.append(pid),
    )
    gunicorn_conf.child_exit(None, type("Worker", (), {"pid": 4242})())
    assert marked == [4242]


def probe_app(tmp_path: Path, **overrides: Any) -> Any:
    config = {**base_config(tmp_path, f"sqlite:///{tmp_path / 'p.sqlite3'}"), **overrides}
    app = create_app(config)
    app.add_url_rule(
        "/_probe", "probe", lambda: {"address": request.remote_addr, "scheme": request.scheme}
    )
    return app.test_client()


FORWARDED = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}


def test_behind_one_proxy_the_client_address_and_scheme_come_from_it(tmp_path: Path) -> None:
    client = probe_app(tmp_path, IDP_PROXY_FIX="1", IDP_ISSUER="https://id.example.com")
    seen = client.get("/_probe", headers=FORWARDED).get_json()
    assert seen == {"address": "203.0.113.5", "scheme": "https"}


def test_only_the_configured_number_of_hops_is_trusted(tmp_path: Path) -> None:
    client = probe_app(tmp_path, IDP_PROXY_FIX="1")
    spoofed = {**FORWARDED, "X-Forwarded-For": "198.51.100.1, 203.0.113.5"}
    assert client.get("/_probe", headers=spoofed).get_json()["address"] == "203.0.113.5"


def test_without_a_proxy_forwarded_headers_are_ignored(tmp_path: Path) -> None:
    seen = probe_app(tmp_path).get("/_probe", headers=FORWARDED).get_json()
    assert seen == {"address": "127.0.0.1", "scheme": "http"}
