"""Password hashing with argon2id; hashes are upgraded when the parameters change."""

from __future__ import annotations

import base64

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


def burn_equivalent_time(password: str) -> None:
    """Verifies against a hash no password matches, so a wrong identifier costs one argon2 run,
    like a wrong password, and the timing does not tell which accounts exist."""
    verify_password(_unmatchable_hash(hasher()), password)


def _unmatchable_hash(password_hasher: PasswordHasher) -> str:
    """An argon2id hash in PHC form with the current parameters and an all-zero digest: checking
    it costs exactly what checking a real hash costs, and making it costs nothing (a hash
    computed on first use, and cached, would make that first wrong identifier twice as slow)."""
    salt = _phc_base64(bytes(password_hasher.salt_len))
    digest = _phc_base64(bytes(password_hasher.hash_len))
    return (
        f"$argon2id$v=19$m={password_hasher.memory_cost},t={password_hasher.time_cost},"
        f"p={password_hasher.parallelism}${salt}${digest}"
    )


def _phc_base64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")
