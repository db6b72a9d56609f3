"""The merged profile, served as OIDC claims (CONTRACT §7).

Each claim may be known from several sources; the served value comes from the highest-priority
source under the claim's conflict rule (`catalogue.py`; by default what the user edited, then an
admin, the management API, the website, then WeChat), and among equals the most recent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from idp.caching import BoundedCache, versions_for
from idp.extensions import db
from idp.identity.catalogue import catalogue, rank, served
from idp.identity.models import Account, Identity, IdentityKind, ProfileClaim
from idp.identity.status import may_hold_tokens
from idp.scopes import scope_set


def profile_values(account: Account) -> dict[str, tuple[str, str]]:
    """{claim: (value, source)} after applying the source priority."""
    rows = db.session.scalars(
        select(ProfileClaim).where(ProfileClaim.account_id == account.id)
    ).all()
    best: dict[str, ProfileClaim] = {}
    for row in rows:
        current = best.get(row.name)
        if current is None or _rank(row) < _rank(current):
            best[row.name] = row
    return {name: (row.value, row.source) for name, row in best.items()}


def _rank(row: ProfileClaim) -> tuple[int, float]:
    return (rank(row.name, row.source), -row.updated_at.timestamp())


def user_claims(account: Account, scope: str, client_appid: str | None = None) -> dict[str, Any]:
    scopes = scope_set(scope)
    claims: dict[str, Any] = {"sub": account.id}
    identities = db.session.scalars(
        select(Identity).where(Identity.account_id == account.id).order_by(Identity.id)
    ).all()
    values = profile_values(account)
    for declaration in catalogue().released_by(scopes):
        if declaration.name in values:
            claims[declaration.name] = served(declaration.name, values[declaration.name][0])
    if "profile" in scopes:
        claims["updated_at"] = int(account.profile_updated_at.timestamp())
    if "phone" in scopes:
        phone = _preferred(identities, IdentityKind.PHONE)
        if phone is not None:
            claims["phone_number"] = phone.value
            claims["phone_number_verified"] = phone.verified
    if "email" in scopes:
        email = _preferred(identities, IdentityKind.EMAIL)
        if email is not None:
            claims["email"] = email.value
            claims["email_verified"] = email.verified
    if "wechat" in scopes:
        unionid = _preferred(identities, IdentityKind.WECHAT_UNIONID)
        if unionid is not None:
            claims["wechat_unionid"] = unionid.value
        if client_appid:
            for identity in identities:
                if (
                    identity.kind == IdentityKind.WECHAT_OPENID
                    and identity.namespace == client_appid
                ):
                    claims["wechat_openid"] = identity.value
    return claims


# (account id, scope, client appid) -> claims. Valid while the account's version is unchanged:
# a profile edit, a phone change or a merge writes the account's rows and bumps it.
CLAIMS: BoundedCache[dict[str, Any]] = BoundedCache(max_entries=20_000)


def cached_user_claims(
    account_id: str, jti: str, scope: str, client_appid: str | None = None
) -> dict[str, Any] | None:
    """`user_claims` of a live account, from this process's cache when nothing changed since.

    Round trips on a hit: none beyond the versions' Redis `MGET`, already made for the token
    check of the same request. On a miss: the account, identities and profile (3 queries).
    None when the account may hold no token (gone, disabled, pending deletion: `status`).
    """
    versions = None if _uncommitted_changes() else versions_for(account_id, jti)
    account_versions = (versions[0], versions[1], 0) if versions is not None else None
    key = (account_id, scope, client_appid)
    if account_versions is not None:
        known = CLAIMS.get(key, account_versions)
        if known is not None:
            return dict(known)
    account = db.session.get(Account, account_id)
    if account is None or not may_hold_tokens(account):
        return None
    claims = user_claims(account, scope, client_appid)
    if account_versions is not None:
        CLAIMS.put(key, account_versions, dict(claims))
    return claims


def _uncommitted_changes() -> bool:
    """Rows written in this transaction are not in any version yet (bumped at commit): the
    claims are then read from the database, never from the cache."""
    if not db.session.registry.has():
        return False  # no session in this request yet: nothing written (and none made here)
    session = db.session
    return bool(
        session.new or session.dirty or session.deleted or session.info.get("idp_cache_changes")
    )


def _preferred(identities: Sequence[Identity], kind: str) -> Identity | None:
    """A verified identity over an unverified one; then the most recently used or linked."""
    candidates = [identity for identity in identities if identity.kind == kind]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda i: (i.verified, (i.last_used_at or i.created_at).timestamp(), i.id),
    )
