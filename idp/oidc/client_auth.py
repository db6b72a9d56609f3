"""`private_key_jwt` client authentication (OIDC Core §9, RFC 7523 §2.2 and §3).

Each check its own method, each with its rule:
- only a client registered for `private_key_jwt`, with keys, is looked for a key (else
  `invalid_client`, never a crash);
- an assertion lives at most IDP_CLIENT_ASSERTION_MAX_LIFETIME seconds (RFC 7523 §3 ¶4 and ¶6:
  an `exp` unreasonably far in the future, an `iat` in the future, are refused);
- its `jti` is used once (RFC 7523 §3 ¶7), recorded in the replay cache and committed at once, so
  that neither a later failure of the request nor a second process lets it through again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from idp.oidc.context import issuer
from idp.oidc.models import Client
from idp.replay import remember_once

REGISTERED_METHOD = "private_key_jwt"


class PrivateKeyJWTAuthentication(JWTBearerClientAssertion):
    """A failure is `invalid_client`; its status and challenge are decided for every method
    alike (`server.IdentityProviderServer.authenticate_client`: 400, no Basic challenge)."""

    def get_audiences(self) -> list[str]:
        # The token endpoint, or the issuer itself (both are allowed by OIDC Core §9).
        base = issuer()
        return [f"{base}/oauth/token", base, f"{base}/oauth/revoke", f"{base}/oauth/introspect"]

    def resolve_client_public_key(self, client: Client) -> Any:
        if client.token_endpoint_auth_method != REGISTERED_METHOD or not client.jwks:
            raise InvalidClientError(
                description="The client is not registered for private_key_jwt."
            )
        try:
            return KeySet.import_key_set(cast(KeySetSerialization, client.jwks))
        except (JoseError, ValueError, TypeError, KeyError) as error:
            description = "The client's registered keys are unusable."
            raise InvalidClientError(description=description) from error

    def verify_claims(self, claims: Any) -> None:
        self.check_lifetime(claims)
        super().verify_claims(claims)

    def check_lifetime(self, claims: Any) -> None:
        """RFC 7523 §3: `exp` at most max-lifetime ahead of now and of `iat`; `iat` not ahead."""
        limit = int(current_app.config["IDP_CLIENT_ASSERTION_MAX_LIFETIME"])
        now = time.time()
        expires, issued = claims.get("exp"), claims.get("iat")
        if not _is_number(expires):
            return  # the registry's own check answers "missing / invalid exp"
        if expires - now > limit + self.leeway:
            raise InvalidClientError(description=f"The assertion must expire within {limit} s.")
        if issued is None:
            return
        if not _is_number(issued) or issued > now + self.leeway:
            raise InvalidClientError(description="Invalid claim: 'iat'.")
        if expires - issued > limit + self.leeway:
            raise InvalidClientError(description=f"The assertion may live at most {limit} s.")

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        if not isinstance(jti, str) or not jti or len(jti) > 128 or "\x00" in jti:
            return False  # a NUL is not storable in PostgreSQL; no honest client makes one
        expires = datetime.fromtimestamp(int(claims["exp"]) + self.leeway, UTC)
        return remember_once(f"client-assertion:{claims['sub']}:{jti}", expires)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
