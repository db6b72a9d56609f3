"""Scopes the IdP knows (CONTRACT §7). The claims each one releases are declared in the data
dictionary, `idp/identity/catalogue.py`."""

from __future__ import annotations

from authlib.oauth2.rfc6749.util import scope_to_list

# OIDC Core §5.4's scopes, `wechat` (CONTRACT §7) and `offline_access` (§11).
SUPPORTED_SCOPES = ("openid", "profile", "address", "email", "phone", "wechat", "offline_access")
# Lets a service vouch for a phone (link it verified) without the IdP having checked it: a
# verified phone signs in by SMS, so only a service the operator trusts that far gets it.
VOUCH_FOR_PHONES = "idp:phones.vouch"
# Lets a service see phones and emails in full in the management API's answers; without it they
# read masked (`138****6183`, `a***@example.com`), as on the admin pages (issue 27 item 3).
PERSONAL_DATA = "idp:accounts.personal_data"
# The management API's (CONTRACT §8): client-credentials tokens only, granted per client by an
# admin through the client's registered scope.
MANAGEMENT_SCOPES = (
    "idp:accounts.read",
    "idp:accounts.write",
    "idp:merges",
    "idp:sessions",
    "idp:events.read",
    VOUCH_FOR_PHONES,
    PERSONAL_DATA,
)
MANAGEMENT_SCOPE_PREFIX = "idp:"
# The management API's tokens come from client_credentials alone: a client of the login flow
# (authorization_code, token exchange, refresh) is never registered with an `idp:` scope.
MANAGEMENT_GRANT_TYPES = ("client_credentials",)
REGISTRABLE_SCOPES = SUPPORTED_SCOPES + MANAGEMENT_SCOPES


def management_scopes_misplaced(scopes: set[str], grant_types: set[str]) -> set[str]:
    """The `idp:` scopes asked for a client that may use another grant than client_credentials
    (empty when none is): a user's login flow never carries a management scope."""
    if grant_types <= set(MANAGEMENT_GRANT_TYPES):
        return set()
    return {scope for scope in scopes if scope.startswith(MANAGEMENT_SCOPE_PREFIX)}


def scope_set(scope: str | None) -> set[str]:
    return set(scope_to_list(scope or "") or [])
