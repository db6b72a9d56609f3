"""Personal data shown on purpose (PIPL; issue 27 item 3): admin pages and management API
answers show phones and emails masked (`138****6183`, `a***@example.com`); the full value is
shown only after an explicit, audited reveal (idp/admin/views/reveal.py) or to a service holding
`idp:accounts.personal_data` (idp/api/representations.py). Searching by a full phone does not
need it: the lookup compares with the stored value and the answer shows the match masked.
It lives in the engine, below both the admin UI and the API, so the two mask alike.
"""

from __future__ import annotations

MASK = "****"
CHINA = "+86"
# Claims and identity kinds that hold a phone or an email.
PHONE_FIELDS = frozenset({"phone", "phone_number"})
EMAIL_FIELDS = frozenset({"email"})


def mask_phone(value: str) -> str:
    """`+8613812346183` → `138****6183`; elsewhere the country code stays: `+44 77****0123`."""
    text = (value or "").strip()
    if text.startswith(CHINA) and len(text) > len(CHINA) + 7:
        national = text[len(CHINA):]
        return national[:3] + MASK + national[-4:]
    digits = text.lstrip("+")
    if len(digits) < 8:
        return MASK
    return ("+" if text.startswith("+") else "") + digits[:4] + MASK + digits[-4:]


def mask_email(value: str) -> str:
    """`alice@example.com` → `a***@example.com`."""
    local, at, domain = (value or "").partition("@")
    if not at:
        return MASK
    return (local[:1] or "") + "***@" + domain


def mask_field(field: str, value: object) -> object:
    """The masked form when `field` (an identity kind or a claim name) holds personal data."""
    if not isinstance(value, str):
        return value
    if field in PHONE_FIELDS:
        return mask_phone(value)
    if field in EMAIL_FIELDS:
        return mask_email(value)
    return value
