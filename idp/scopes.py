"""Scopes the IdP knows, and the claims each one releases (CONTRACT §7)."""

from __future__ import annotations

from authlib.oauth2.rfc6749.util import scope_to_list

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": ("name", "nickname", "picture", "locale", "gender", "birthdate", "updated_at"),
    "address": ("address",),  # OIDC Core §5.4, §5.1.1
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "wechat": ("wechat_unionid", "wechat_openid"),
    "offline_access": (),
}
SUPPORTED_SCOPES = tuple(SCOPE_CLAIMS)
# The management API's (CONTRACT §8): client-credentials tokens only, granted per client by an
# admin through the client's registered scope.
MANAGEMENT_SCOPES = (
    "idp:accounts.read",
    "idp:accounts.write",
    "idp:merges",
    "idp:sessions",
    "idp:events.read",
)
REGISTRABLE_SCOPES = SUPPORTED_SCOPES + MANAGEMENT_SCOPES


def scope_set(scope: str | None) -> set[str]:
    return set(scope_to_list(scope or "") or [])
