"""A client may require a second factor: per client (`Client.require_mfa`), or per request with
`acr_values` naming ACR_MFA (OIDC Core §3.1.2.1; the value is this IdP's, advertised in
`acr_values_supported`). The `acr` of tokens then says it (§2), and `amr` holds `mfa` (RFC 8176).

A signed-in user who has a second factor but did not give it in this session is asked for it
(step-up); one who has none cannot meet the requirement: the client gets
`unmet_authentication_requirements` (OpenID Connect Core 1.0 errata set 2, §3.1.2.6).
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error

from idp.oidc.models import ACR_MFA

# The PAPE policy URI is what many relying parties already send for "multi-factor".
ACR_MFA_ALIASES = frozenset(
    {ACR_MFA, "http://schemas.openid.net/pape/policies/2007/06/multi-factor"}
)


class UnmetAuthenticationRequirements(OAuth2Error):
    error = "unmet_authentication_requirements"
    description = "The client requires a second factor, and the user has none."


def mfa_required(client_requires: bool, acr_values: str | None) -> bool:
    return client_requires or bool(ACR_MFA_ALIASES & set((acr_values or "").split()))


def session_has_mfa(amr: str) -> bool:
    """`amr`: the session's, space-separated."""
    return "mfa" in amr.split()
