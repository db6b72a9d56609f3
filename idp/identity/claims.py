"""The merged profile, served as OIDC claims (CONTRACT §7).

Each claim may be known from several sources; the served value comes from the highest-priority
source under the claim's conflict rule (`catalogue.py`; by default what the user edited, then an
admin, the management API, the website, then WeChat), and among equals the most recent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from idp.extensions import db
from idp.identity.catalogue import catalogue, rank, served
from idp.identity.models import Account, Identity, IdentityKind, ProfileClaim
from idp.scopes import scope_set

# The free-text profile claims the management API writes (source `api`); the data dictionary
# (`catalogue.py`) declares every claim with its type and writers.
PROFILE_CLAIMS = ("name", "nickname", "picture", "locale")


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


def _preferred(identities: list[Identity], kind: str) -> Identity | None:
    """A verified identity over an unverified one; then the most recently used or linked."""
    candidates = [identity for identity in identities if identity.kind == kind]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda i: (i.verified, (i.last_used_at or i.created_at).timestamp(), i.id),
    )
