"""Phone numbers are stored and served in E.164."""

from __future__ import annotations

import phonenumbers


class InvalidPhoneNumber(ValueError):
    pass


def normalize_phone(raw: str, default_region: str = "CN") -> str:
    """`138 0013 8000` → `+8613800138000`; a leading `+` or `00` overrides the region."""
    text = (raw or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhoneNumber("not a phone number") from error
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def looks_like_phone(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and "@" not in stripped and any(c.isdigit() for c in stripped)
