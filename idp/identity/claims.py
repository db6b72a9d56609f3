"""The merged profile, served as OIDC claims (CONTRACT §7).

Each claim may be known from several sources; the served value comes from the highest-priority
source under the claim's conflict rule (`catalogue.py`; by default what the user edited, then an
admin, the management API, the website, then WeChat), and among equals the most recent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from idp.caching import BoundedCache, uncommitted_changes, versions_for
from idp.extensions import db
from idp.identity.catalogue import ACCOUNT, IDENTITY, PROFILE, catalogue, rank, served
from idp.identity.models import Account, Identity, IdentityKind, ProfileClaim
from idp.identity.status import may_hold_tokens
from idp.scopes import scope_set


def profile_values(account: Account) -> dict[str, tuple[str, str]]:
    """{claim: (value, source)} after applying the source priority."""
    rows = db.session.scalars(
        select(ProfileClaim).where(ProfileClaim.account_id == account.id)
    ).all()
    by_name: dict[str, list[ProfileClaim]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    return {name: (best.value, best.source)
            for name, best in ((name, served_row(candidates))
                               for name, candidates in by_name.items())}


def served_row(candidates: Sequence[ProfileClaim]) -> ProfileClaim:
    """The served one of a claim's stored values: the best source under the claim's conflict
    rule (`catalogue.rank`), the most recent among equals. Also asked by the merge preview."""
    return min(candidates, key=lambda row: (rank(row.name, row.source),
                                            -row.updated_at.timestamp()))


def user_claims(account: Account, scope: str, client_appid: str | None = None) -> dict[str, Any]:
    """The claims `scope` releases about `account` to a client whose WeChat app (if any) is
    `client_appid`: what the ID token, userinfo and the claims cache serve. Every claim is a
    declaration of the data dictionary (`catalogue.py`), read from where it says it comes from;
    `sub` is always there."""
    released = catalogue().released_by(scope_set(scope) | {"openid"})
    origins = {declaration.origin for declaration in released}
    values = profile_values(account) if PROFILE in origins else {}
    identities = db.session.scalars(
        select(Identity).where(Identity.account_id == account.id).order_by(Identity.id)
    ).all() if IDENTITY in origins else []
    claims: dict[str, Any] = {}
    for declaration in released:
        name = declaration.name
        if declaration.origin == PROFILE:
            if name in values:
                claims[name] = served(name, values[name][0])
        elif declaration.origin == ACCOUNT:
            claims[name] = _ACCOUNT_CLAIMS[name](account)
        elif name == "wechat_openid":
            for identity in identities:  # the newest link, should a merge have left two
                if identity.kind == IdentityKind.WECHAT_OPENID and client_appid \
                        and identity.namespace == client_appid:
                    claims[name] = identity.value
        else:
            kind, field = _IDENTITY_CLAIMS[name]
            preferred = _preferred(identities, kind)
            if preferred is not None:
                claims[name] = getattr(preferred, field)
    return claims


_ACCOUNT_CLAIMS: dict[str, Callable[[Account], Any]] = {
    "sub": lambda account: account.id,
    "updated_at": lambda account: int(account.profile_updated_at.timestamp()),
}
# Identity claims: (the kind of identity, its attribute). `wechat_openid` is per client.
_IDENTITY_CLAIMS = {
    "phone_number": (IdentityKind.PHONE, "value"),
    "phone_number_verified": (IdentityKind.PHONE, "verified"),
    "email": (IdentityKind.EMAIL, "value"),
    "email_verified": (IdentityKind.EMAIL, "verified"),
    "wechat_unionid": (IdentityKind.WECHAT_UNIONID, "value"),
}


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
    versions = None if uncommitted_changes() else versions_for(account_id, jti)
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


def _preferred(identities: Sequence[Identity], kind: str) -> Identity | None:
    """A verified identity over an unverified one; then the most recently used or linked."""
    candidates = [identity for identity in identities if identity.kind == kind]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda i: (i.verified, (i.last_used_at or i.created_at).timestamp(), i.id),
    )
