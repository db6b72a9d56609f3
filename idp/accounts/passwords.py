"""Password hashing with argon2id; hashes are upgraded when the parameters change."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_PASSWORD_LENGTH = 8


class WeakPassword(ValueError):
    pass


def hasher() -> PasswordHasher:
    config = current_app.config
    return PasswordHasher(
        time_cost=int(config["IDP_ARGON2_TIME_COST"]),
        memory_cost=int(config["IDP_ARGON2_MEMORY_COST"]),
        parallelism=int(config["IDP_ARGON2_PARALLELISM"]),
    )


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise WeakPassword("at most 1024 characters")
    return hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return hasher().check_needs_rehash(stored_hash)


# Verified against when no account matches, so a wrong identifier costs as long as a wrong
# password and the timing does not tell which accounts exist.
_DUMMY_HASH: dict[str, str] = {}


def burn_equivalent_time(password: str) -> None:
    key = repr(hasher())
    if key not in _DUMMY_HASH:
        _DUMMY_HASH[key] = hasher().hash("not a real password, only for timing")
    verify_password(_DUMMY_HASH[key], password)
