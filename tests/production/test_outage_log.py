"""The outage log (idp/outage.py): one line when an episode starts, one when it ends, silence
in between; a failure after a quiet period is a new episode. And which errors are an outage."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import exc as sa_exc

from idp.outage import OutageLog, is_database_outage


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "idp.database"]


def refused() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))


def test_one_line_per_episode(caplog: pytest.LogCaptureFixture) -> None:
    outages = OutageLog(quiet_seconds=0.2)
    with caplog.at_level(logging.INFO, logger="idp.database"):
        for _ in range(50):
            outages.failed(refused())
        assert len(lines(caplog)) == 1 and "database unavailable" in lines(caplog)[0]
        assert "ConnectionRefusedError" in lines(caplog)[0]
        outages.reconnected()
        outages.reconnected()  # a second new connection is not news
        assert len(lines(caplog)) == 2 and "50 requests answered 503" in lines(caplog)[1]

        outages.failed(refused())
        time.sleep(0.3)
        outages.failed(refused())  # after a quiet period: a new episode
        assert len(lines(caplog)) == 4
    assert all(r.exc_info is None for r in caplog.records)


def test_which_errors_are_an_outage() -> None:
    assert is_database_outage(refused())
    assert is_database_outage(sa_exc.TimeoutError("pool exhausted"))
    wrapped = RuntimeError("while issuing a token")
    wrapped.__cause__ = refused()
    assert is_database_outage(wrapped)
    assert not is_database_outage(sa_exc.IntegrityError("INSERT", {}, ValueError("dup")))
    assert not is_database_outage(sa_exc.ProgrammingError("SELEC", {}, ValueError("syntax")))
    assert not is_database_outage(KeyError("bug"))
