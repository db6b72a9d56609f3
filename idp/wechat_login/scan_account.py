"""Who confirmed a scan, as the waiting browser shows it before signing in (RFC 6749 §10.12).

Anyone who can see the code on a screen can confirm it with their own mini-program; if the
browser then signed in by itself, it would be the other person's account (login CSRF). So the
browser shows which account confirmed and asks the person to continue or cancel. What it shows
is enough to recognise oneself and no more: a masked phone (`138****6183`), the nickname, the
avatar. The phone comes first because it was verified; a nickname anyone can set.
"""

from __future__ import annotations

from typing import TypedDict

from idp.identity.accounts import identities_of
from idp.identity.claims import profile_values
from idp.identity.models import Account, IdentityKind

MAINLAND_PREFIX = "+86"
MAINLAND_LENGTH = len("+8613800138000")


class ConfirmedBy(TypedDict):
    phone: str | None
    nickname: str | None
    picture: str | None


def confirmed_by(account: Account) -> ConfirmedBy:
    """What the browser shows of the account that confirmed. Round trips: 2 (identities,
    profile claims)."""
    phones = [identity for identity in identities_of(account, IdentityKind.PHONE)
              if identity.verified]
    phone = max(phones, key=lambda i: (i.last_used_at or i.created_at).timestamp(), default=None)
    profile = profile_values(account)
    nickname = profile.get("nickname", ("", ""))[0] or None
    picture = profile.get("picture", ("", ""))[0] or None
    return {
        "phone": masked_phone(phone.value) if phone is not None else None,
        "nickname": nickname,
        # The page's CSP takes images from https: only; anything else is not shown at all.
        "picture": picture if picture and picture.startswith("https://") else None,
    }


def masked_phone(e164: str) -> str:
    """`+8613800136183` → `138****6183` (how Chinese apps show a number); elsewhere the country
    code stays: `+85291234567` → `+852****4567`."""
    if e164.startswith(MAINLAND_PREFIX) and len(e164) == MAINLAND_LENGTH:
        national = e164[len(MAINLAND_PREFIX):]
        return f"{national[:3]}****{national[-4:]}"
    return f"{e164[:-8]}****{e164[-4:]}" if len(e164) > 8 else "****"
