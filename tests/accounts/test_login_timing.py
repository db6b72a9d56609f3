"""A wrong password costs one argon2 run whether or not the phone has an account, so timing
does not tell which phones are registered (issue 10, item 4). Counted, never timed."""

from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher

from tests.conftest import PASSWORD


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    runs: list[str] = []
    real_hash, real_verify = PasswordHasher.hash, PasswordHasher.verify

    def counted_hash(self: PasswordHasher, *args: Any, **kwargs: Any) -> str:
        runs.append("hash")
        return real_hash(self, *args, **kwargs)

    def counted_verify(self: PasswordHasher, *args: Any, **kwargs: Any) -> bool:
        runs.append("verify")
        return real_verify(self, *args, **kwargs)

    monkeypatch.setattr(PasswordHasher, "hash", counted_hash)
    monkeypatch.setattr(PasswordHasher, "verify", counted_verify)
    yield runs


def test_unknown_and_known_phone_cost_one_argon2_verify_each(
    make_user: Any, argon2_runs: list[str]
) -> None:
    from idp.accounts.login import authenticate

    make_user(phone="+8613800138000")
    for attempt in range(3):  # every time, not only after a warm-up
        argon2_runs.clear()
        assert authenticate("+8613700137000", f"wrong {attempt}") is None
        unknown = list(argon2_runs)
        argon2_runs.clear()
        assert authenticate("+8613800138000", f"wrong {attempt}") is None
        known = list(argon2_runs)
        assert unknown == known == ["verify"]


def test_the_right_password_still_signs_in_after_unknown_identifiers(
    make_user: Any, argon2_runs: list[str]
) -> None:
    from idp.accounts.login import authenticate

    account = make_user(phone="+8613800138000")
    assert authenticate("nobody@example.com", PASSWORD) is None
    signed_in = authenticate("+8613800138000", PASSWORD)
    assert signed_in is not None and signed_in.id == account.id
