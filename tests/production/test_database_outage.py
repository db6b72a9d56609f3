"""A PostgreSQL outage while serving (docs/DEPLOYMENT.md, "When PostgreSQL is down"): every
request that needs the database is answered 503 with Retry-After — the RFC 6749 JSON
`temporarily_unavailable` on protocol endpoints, a page for people — and the log says so once
per episode, not with a traceback per request. /readyz says 503; everything works again from
the first request after the database is back.

On a private cluster that the test stops and starts (tests/production/test_database_restart.py);
the machine's shared PostgreSQL is never touched."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.production import test_database_restart as restart
from tests.production.conftest import browser_login
from tests.production.test_database_restart import PrivatePostgres, Served, _token

# The private cluster and the app served on it, as the restart test has them.
private_postgres = restart.private_postgres
served = restart.served

REQUESTS_DURING_OUTAGE = 24


def assert_json_503(response: requests.Response) -> None:
    assert response.status_code == 503, response.text[:500]
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert "Traceback" not in response.text and "postgres" not in response.text.lower()


def assert_page_503(response: requests.Response) -> None:
    assert response.status_code == 503, response.text[:500]
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Briefly unavailable" in response.text
    assert response.headers["X-Request-Id"] in response.text
    assert "Traceback" not in response.text and "postgres" not in response.text.lower()


def test_a_database_outage_is_503_with_retry_after_and_one_log_line__rfc9110_15_6_4(
    private_postgres: PrivatePostgres, served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    with requests.Session() as browser, requests.Session() as http:
        browser_login(browser, served.url)
        assert _token(served, http).status_code == 200

        private_postgres.ctl("stop", "-m", "fast")
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert_json_503(_token(served, http))
            with ThreadPoolExecutor(max_workers=4) as pool:
                for response in pool.map(lambda _: _token(served), range(REQUESTS_DURING_OUTAGE)):
                    assert_json_503(response)
            assert_json_503(http.post(f"{served.url}/oauth/introspect", data={"token": "x"},
                                      auth=served.auth, timeout=10))
            assert_page_503(browser.get(f"{served.url}/account", timeout=10))
            assert_page_503(browser.get(f"{served.url}/oauth/authorize", timeout=10,
                                        params={"client_id": served.auth[0]}))
            ready = http.get(f"{served.url}/readyz", timeout=10)
            assert ready.status_code == 503
            assert ready.json()["database"] == "unreachable"
        outage_records = list(caplog.records)

        private_postgres.start()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert _token(served, http).status_code == 200
            assert browser.get(f"{served.url}/account", timeout=10).status_code == 200
        recovery_records = list(caplog.records)

    started = [r for r in outage_records if r.name == "idp.database"]
    assert len(started) == 1, [r.getMessage() for r in started]
    assert "database unavailable" in started[0].getMessage()
    assert "503" in started[0].getMessage()
    tracebacks = [r for r in outage_records if r.exc_info]
    assert tracebacks == [], [(r.name, r.getMessage()) for r in tracebacks]
    assert not [r for r in outage_records if r.levelno >= logging.ERROR and r is not started[0]]

    ended = [r for r in recovery_records if r.name == "idp.database"]
    assert len(ended) == 1 and "available again" in ended[0].getMessage()
