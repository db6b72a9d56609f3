"""Revocation (RFC 7009), introspection (RFC 7662), userinfo (OIDC Core §5.3) and
RP-initiated logout (OIDC RP-Initiated Logout 1.0)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import g

from idp.extensions import db
from idp.identity.models import Account
from idp.identity.status import may_hold_tokens
from idp.models_base import utcnow
from idp.oidc.context import issuer, keyring
from idp.oidc.grants import CLIENT_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS, revoke_family
from idp.oidc.id_token_hint import audience_client_id, id_token_hint_claims
from idp.oidc.models import Client, RefreshToken, token_digest
from idp.oidc.tokens import AccessToken, decode_access_token, revoke_access_token


def find_token(token_string: str, hint: str | None) -> AccessToken | RefreshToken | None:
    """Either kind, whatever the hint says (RFC 7009 §2.1: the hint only speeds the search)."""
    if not isinstance(token_string, str) or len(token_string) > 8192:
        return None
    if hint != "refresh_token":
        token = _access_token(token_string)
        if token is not None:
            return token
    row = db.session.get(RefreshToken, token_digest(token_string))
    if row is not None:
        return row
    return None


def versions_hint(token_string: Any) -> tuple[str, str]:
    """The (account, token) whose cache versions introspecting `token_string` reads
    (`idp.oidc.tokens.access_token_revoked`), for reading them early (`client_auth_failures`);
    ("", "") for anything that is not a live access token of ours. The token is verified once
    per request: `find_token` finds it decoded."""
    if not isinstance(token_string, str) or len(token_string) > 8192:
        return "", ""
    token = _access_token(token_string)
    if token is None:
        return "", ""
    return str(token.claims.get("sub")), str(token.claims.get("jti"))


def _access_token(token_string: str) -> AccessToken | None:
    """`decode_access_token`, once per request and token."""
    if token_string.count(".") != 2:
        return None
    decoded: dict[str, AccessToken | None] = g.setdefault("idp_access_tokens", {})
    if token_string not in decoded:
        decoded[token_string] = decode_access_token(token_string)
    return decoded[token_string]


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def authenticate_token(self, request: Any, client: Client) -> Any:
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        owner = token.client_id if token is not None else None
        # A token of another client is silently ignored (RFC 7009 §2.1: invalid tokens → 200).
        return token if owner == client.client_id else None

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: Any, request: Any) -> None:
        if isinstance(token, AccessToken):
            revoke_access_token(token.jti, token.expires_at)
        else:
            # Revoking a refresh token ends the grant: its whole family and the access token.
            revoke_family(token.family)
        db.session.commit()


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_token(token_string, token_type_hint)

    def check_permission(self, token: Any, client: Client, request: Any) -> bool:
        # A client learns about tokens issued to it or meant for it (its audience).
        if isinstance(token, AccessToken):
            audience = token.claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            return token.client_id == client.client_id or client.client_id in audiences
        return token.client_id == client.client_id

    def create_introspection_payload(self, token: Any) -> dict[str, Any]:
        if token is None:
            return {"active": False}
        if isinstance(token, RefreshToken):
            now = utcnow()
            if token.revoked_at or token.rotated_at or token.expires_at <= now:
                return {"active": False}
            account = db.session.get(Account, token.account_id)
            if not may_hold_tokens(account):
                return {"active": False}
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": token.client_id,
                "sub": token.account_id,
                "scope": token.scope,
                "iss": issuer(),
                "exp": int(token.expires_at.timestamp()),
                "iat": int(token.issued_at.timestamp()),
            }
        if token.is_expired() or token.is_revoked():
            return {"active": False}
        return {"active": True, "token_type": "Bearer", **token.claims}


class EndSession(EndSessionEndpoint):
    def validate_request(self, request: Any) -> Any:
        """§2: a hint must be an ID token of this IdP, issued to a client that exists; Authlib
        then checks `client_id` against its `aud` and the post-logout redirect URI (§3)."""
        hint = request.payload.data.get("id_token_hint")
        if hint:
            claims = id_token_hint_claims(hint)
            if self.server.query_client(audience_client_id(claims)) is None:
                raise InvalidRequestError("'id_token_hint' was issued to no known client.")
        return super().validate_request(request)

    def get_server_jwks(self) -> Any:
        return keyring().verification_keys()

    def get_algorithms(self) -> list[str]:
        return ["RS256", "ES256"]

    def resolve_client_from_id_token_claims(self, id_token_claims: dict[str, Any]) -> Any:
        # Our ID tokens carry `aud` as a one-element list, and `azp`.
        client_id = audience_client_id(id_token_claims)
        return self.server.query_client(client_id) if client_id is not None else None

    def end_session(self, end_session_request: Any) -> None:
        from idp.accounts.sessions import end_session

        end_session()
