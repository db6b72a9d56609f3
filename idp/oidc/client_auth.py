"""`private_key_jwt` client authentication (OIDC Core §9, RFC 7523 §2.2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.jwk import KeySet

from idp.oidc.context import issuer
from idp.oidc.models import Client
from idp.replay import remember_once


class PrivateKeyJWTAuthentication(JWTBearerClientAssertion):
    def get_audiences(self) -> list[str]:
        # The token endpoint, or the issuer itself (both are allowed by OIDC Core §9).
        base = issuer()
        return [f"{base}/oauth/token", base, f"{base}/oauth/revoke", f"{base}/oauth/introspect"]

    def resolve_client_public_key(self, client: Client) -> Any:
        return KeySet.import_key_set(client.jwks or {"keys": []})

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        if not isinstance(jti, str) or "\x00" in jti:
            return False  # not storable in PostgreSQL; no honest client makes one
        expires = datetime.fromtimestamp(int(claims.get("exp", 0)), UTC)
        return remember_once(f"client-assertion:{claims['sub']}:{jti}", expires)
