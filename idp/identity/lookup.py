"""Finding accounts by any identifier: a phone in any usual spelling, a UUID (`sub`, also a
merged-away one), an openid, a unionid, an email, or part of a name or nickname. Used by the
admin search box and the management API alike."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, func, or_, select

from idp.identity.models import Account, AccountAlias, Identity, IdentityKind, ProfileClaim
from idp.identity.phones import InvalidPhoneNumber, looks_like_phone, normalize_phone


def matching_account_ids(text: str) -> Select[tuple[str]]:
    conditions = [
        # openids and unionids are matched exactly, whatever the appid.
        Identity.kind.in_((IdentityKind.WECHAT_OPENID, IdentityKind.WECHAT_UNIONID))
        & (Identity.value == text)
    ]
    if "@" in text:
        conditions.append((Identity.kind == IdentityKind.EMAIL) & (Identity.value == text.lower()))
    elif looks_like_phone(text):
        try:
            phone = normalize_phone(text)
        except InvalidPhoneNumber:
            phone = None
        if phone:
            conditions.append((Identity.kind == IdentityKind.PHONE) & (Identity.value == phone))
    by_identity = select(Identity.account_id).where(or_(*conditions))
    by_name = select(ProfileClaim.account_id).where(
        ProfileClaim.name.in_(("name", "nickname")),
        func.lower(ProfileClaim.value).contains(text.lower(), autoescape=True),
    )
    parts = [by_identity, by_name]
    subject = _as_uuid(text)
    if subject:
        parts.append(select(Account.id).where(Account.id == subject))
        parts.append(select(AccountAlias.account_id).where(AccountAlias.alias_sub == subject))
    return parts[0].union(*parts[1:])  # type: ignore[return-value]


def _as_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
