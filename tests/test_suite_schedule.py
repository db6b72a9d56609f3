"""The modules that tests/conftest.py hands to pytest-xdist's workers first exist: a renamed or
removed module would otherwise silently fall back to the end of the run."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SCHEDULED_FIRST


def test_every_module_scheduled_first_is_a_test_module() -> None:
    tests = Path(__file__).parent
    missing = [name for name in SCHEDULED_FIRST if not (tests / name).is_file()]
    assert missing == []
    assert all(Path(name).name.startswith("test_") for name in SCHEDULED_FIRST)
    assert len(set(SCHEDULED_FIRST)) == len(SCHEDULED_FIRST)
