"""Finding accounts by any identifier: a phone in any usual spelling, a UUID (`sub`, also a
merged-away one), an openid, a unionid, an email, or part of a name or nickname. Used by the
admin search box and the management API alike.

Every branch is an exact or prefix lookup on an index, so a search costs the same at a
thousand accounts or a million: identifiers by `ix_identity_lookup` (kind, value), subs by the
primary key and the alias table, names by `ix_profile_claim_name_trigram` (PostgreSQL's pg_trgm:
any part of three characters or more) or `ix_profile_claim_name_prefix` (shorter queries, and
SQLite, where a name matches from its beginning only).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, func, select, text

from idp.extensions import db
from idp.field_crypto import BlindIndex
from idp.identity.models import Account, AccountAlias, Identity, IdentityKind, ProfileClaim
from idp.identity.phones import InvalidPhoneNumber, looks_like_phone, normalize_phone

# WeChat openids and unionids: 28 characters of base64url today; any such word is looked up.
WECHAT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
NAME_CLAIMS_PREDICATE = text("profile_claim.name IN ('name', 'nickname')")
TRIGRAM = 3  # pg_trgm matches substrings of three characters or more


def matching_account_ids(text: str) -> Select[tuple[str]]:
    """An identifier (sub, email, phone) is looked up exactly and nothing else; any other word
    is an openid or unionid, or part of a name."""
    subject = _as_uuid(text)
    phone = _as_phone(text)
    if subject:
        parts = [select(Account.id).where(Account.id == subject),
                 select(AccountAlias.account_id).where(AccountAlias.alias_sub == subject)]
    elif "@" in text:
        parts = [_by_identity((IdentityKind.EMAIL,), text.lower())]
    elif phone:
        parts = [_by_identity((IdentityKind.PHONE,), phone)]
    else:
        parts = [_by_name(text.lower())]
        if WECHAT_ID.fullmatch(text):
            # openids and unionids are matched exactly, whatever the appid.
            parts.append(
                _by_identity((IdentityKind.WECHAT_OPENID, IdentityKind.WECHAT_UNIONID), text)
            )
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]  # type: ignore[return-value]


def _by_identity(kinds: tuple[str, ...], value: str) -> Select[Any]:
    return select(Identity.account_id).where(Identity.value_is(value, *kinds))


def value_behind(kind: str, lookup_key: str | None) -> str | None:
    """The value a blind index stands for (for display: the reconciliation report groups and
    stores identities by their lookup key); a plain value (a row not yet encrypted) as it is."""
    if lookup_key is None:
        return None
    return values_behind(kind, [lookup_key]).get(lookup_key, lookup_key)


def values_behind(kind: str, lookup_keys: Iterable[str | None]) -> dict[str, str]:
    """`value_behind` for many keys in one statement (a page of the report, not a query per
    finding). Every identity holding a blind index holds the same value behind it; keys that
    are no index, or that no identity holds any more, are left out."""
    keys = {key for key in lookup_keys if key is not None and BlindIndex.is_index(key)}
    if not keys:
        return {}
    rows = db.session.execute(
        select(Identity.lookup_key, Identity.sealed_value).where(
            Identity.kind == kind, Identity.lookup_key.in_(keys),
            Identity.sealed_value.is_not(None))
    )
    return {key: value for key, value in rows if value is not None}


def _by_name(prefix: str) -> Select[Any]:
    """Names and nicknames holding `text` (PostgreSQL, three characters or more: the trigram
    index) or starting with it (the prefix index: PostgreSQL's LIKE 'p%' on
    text_pattern_ops, SQLite's binary range [p, p⁺)), case-insensitively."""
    lowered = func.lower(ProfileClaim.value)
    if db.engine.dialect.name == "postgresql":
        matches = (lowered.contains(prefix, autoescape=True) if len(prefix) >= TRIGRAM
                   else lowered.startswith(prefix, autoescape=True))
    else:
        upper_bound = _past_prefix(prefix)
        matches = lowered >= prefix
        if upper_bound is not None:
            matches &= lowered < upper_bound
    # Spelled as the partial index's own predicate, so the planner sees that it applies.
    return select(ProfileClaim.account_id).where(NAME_CLAIMS_PREDICATE, matches)


def _past_prefix(prefix: str) -> str | None:
    """The least string after every string starting with `prefix`, in code point order (as
    SQLite compares UTF-8): its last character, stepped over the surrogates (no character) and
    carried past U+10FFFF; None when every character is U+10FFFF (no bound)."""
    while prefix:
        code = ord(prefix[-1]) + 1
        if code == 0xD800:
            code = 0xE000
        if code <= 0x10FFFF:
            return prefix[:-1] + chr(code)
        prefix = prefix[:-1]
    return None


def _as_phone(text: str) -> str | None:
    if not looks_like_phone(text):
        return None
    try:
        return normalize_phone(text)
    except InvalidPhoneNumber:
        return None


def _as_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
