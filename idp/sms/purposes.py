"""Why a code is sent. Each purpose is one approved template at the provider."""

from __future__ import annotations

from enum import StrEnum


class Purpose(StrEnum):
    LOGIN = "login"
    REGISTER = "register"
    RESET = "reset"
    BIND_PHONE = "bind_phone"
    CHANGE_PHONE = "change_phone"


def parse_purpose(value: str) -> Purpose:
    try:
        return Purpose(value)
    except ValueError:
        names = ", ".join(p.value for p in Purpose)
        raise ValueError(f"unknown SMS purpose {value!r}; one of {names}") from None
