"""Is this `id_token_hint` an ID token this IdP issued? (RP-Initiated Logout 1.0 §2)

The IdP signs several kinds of JWT with the same keys: ID tokens, RFC 9068 access tokens
(`typ: at+jwt`, with `client_id` and `scope`), logout tokens (`typ: logout+jwt`, with `events`)
and security event tokens (`typ: secevent+jwt`, with `events`). A valid signature therefore
says only "ours"; the header and claims say which kind. Only an ID token is a hint.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from joserfc.errors import JoseError

from idp.oidc.context import issuer
from idp.oidc.tokens import verified_jwt

ID_TOKEN_TYPES = (None, "JWT")  # what our ID tokens carry (OIDC Core §2 names no `typ`)
OTHER_TOKEN_CLAIMS = ("client_id", "scope", "events")  # RFC 9068 §2.2, RFC 8417 §2.2


def id_token_hint_claims(hint: str) -> dict[str, Any]:
    """The claims of the hint when it is an ID token of ours; `InvalidRequestError` otherwise.
    An expired hint is accepted (§2: the OP SHOULD accept it after `exp`)."""
    try:
        token = verified_jwt(hint)
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidRequestError("'id_token_hint' is not a token of this provider.") from error
    if not _is_id_token(dict(token.header), dict(token.claims)):
        raise InvalidRequestError("'id_token_hint' is not an ID token of this provider.")
    return dict(token.claims)


def _is_id_token(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    return (
        header.get("typ") in ID_TOKEN_TYPES
        and claims.get("iss") == issuer()
        and isinstance(claims.get("sub"), str)
        and bool(claims["sub"])
        and isinstance(claims.get("iat"), int)
        and audience_client_id(claims) is not None
        and not any(name in claims for name in OTHER_TOKEN_CLAIMS)
    )


def audience_client_id(claims: dict[str, Any]) -> str | None:
    """The client the ID token was issued to: `azp`, which must be in `aud`, or the one `aud`."""
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        return None
    authorized_party = claims.get("azp")
    if authorized_party is not None:
        return authorized_party if authorized_party in audiences else None
    return audiences[0] if len(audiences) == 1 else None
