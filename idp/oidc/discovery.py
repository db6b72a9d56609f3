"""OpenID Provider metadata (OIDC Discovery 1.0 §3), also served at the RFC 8414 path."""

from __future__ import annotations

from typing import Any

from idp.identity.catalogue import catalogue, supported_scopes

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def provider_metadata(issuer: str, extra_grant_types: list[str] | None = None) -> dict[str, Any]:
    auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    claims = sorted(catalogue().claims)  # built in and operator-defined alike
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/oauth/jwks",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "end_session_endpoint": f"{issuer}/oauth/logout",
        "scopes_supported": list(supported_scopes()),  # the operator's own scopes too
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            *(extra_grant_types or []),
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "userinfo_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods[:3],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "acr",
            "sid",
            *claims,
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        # A second factor (idp.oidc.step_up); kept here, not imported, to avoid a cycle.
        "acr_values_supported": ["urn:idp:acr:mfa"],
        "ui_locales_supported": ["en", "zh-CN"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    }
