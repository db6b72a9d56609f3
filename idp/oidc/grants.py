"""The grants of the token endpoint, filled into Authlib's hooks.

Security properties, each with its spec:
- codes are single-use and bound to client, redirect URI and PKCE verifier (RFC 6749 §4.1.2,
  RFC 7636); a replayed code revokes what was issued from it (RFC 6749 §4.1.2, RFC 9700 §4.5);
- refresh tokens rotate on every use, and a used one presented again revokes the family
  (RFC 9700 §4.14.2);
- PKCE with S256 only, required of public clients, and no downgrade (RFC 9700 §2.1.1, §4.8).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.grants.util import is_openid_scope
from flask import current_app, g
from sqlalchemy import inspect, select, update

from idp.extensions import db
from idp.identity.claims import cached_user_claims, user_claims
from idp.identity.models import Account
from idp.identity.service import resolve_account
from idp.models_base import utcnow
from idp.oidc.context import auth_context, issuer, keyring
from idp.oidc.models import AuthorizationCode, Client, RefreshToken, token_digest
from idp.oidc.tokens import revoke_access_token

CLIENT_AUTH_METHODS = [
    "client_secret_basic",
    "client_secret_post",
    "client_assertion_jwt",  # Authlib's name for private_key_jwt
    "none",
]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "client_assertion_jwt"]


def active_account(account_id: str) -> Account | None:
    account = resolve_account(account_id)
    if account is None or account.id != account_id or not account.is_active:
        return None  # merged away or disabled since the grant: nothing more is issued
    return account


class S256CodeChallenge(CodeChallenge):
    """PKCE: S256 only; public clients must use it (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        request = grant.request
        if request.client.is_public and not request.payload.data.get("code_challenge"):
            raise InvalidRequestError("Public clients must send a PKCE 'code_challenge' (S256).")
        if request.payload.data.get("code_challenge") and not request.payload.data.get(
            "code_challenge_method"
        ):
            # RFC 7636 defaults to "plain", which we do not accept.
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        ttl = int(current_app.config["IDP_AUTHORIZATION_CODE_TTL"])
        login = g.login_session
        data = request.payload.data
        db.session.add(
            AuthorizationCode(
                code_digest=token_digest(code),
                client_id=request.client.client_id,
                account_id=request.user.id,
                redirect_uri=request.payload.redirect_uri or request.client.redirect_uris[0],
                scope=request.scope or "",
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=int(login.auth_time.timestamp()),
                amr=login.amr.split(),
                session_id=login.id,
                expires_at=utcnow() + timedelta(seconds=ttl),
            )
        )
        db.session.commit()

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        digest = token_digest(code)
        now = utcnow()
        # Claim the code atomically: of two concurrent redemptions exactly one wins.
        claimed = db.session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.code_digest == digest,
                AuthorizationCode.client_id == client.client_id,
                AuthorizationCode.used_at.is_(None),
                AuthorizationCode.expires_at > now,
            )
            .values(used_at=now)
        ).rowcount
        row = db.session.get(AuthorizationCode, digest)
        if claimed == 1:
            return row
        if row is not None and row.used_at is not None and row.client_id == client.client_id:
            revoke_issued_from_code(row)
        db.session.commit()
        return None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Already marked used when claimed; the row stays to recognise a replay."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Account | None:
        account = active_account(authorization_code.account_id)
        if account is not None:
            context = auth_context()
            context.auth_time = authorization_code.auth_time
            context.amr = list(authorization_code.amr or [])
            context.session_id = authorization_code.session_id
        return account


def revoke_issued_from_code(code: AuthorizationCode) -> None:
    if code.token_family:
        revoke_family(code.token_family)
    if code.access_jti:
        revoke_access_token(code.access_jti, utcnow() + timedelta(days=1))


def revoke_family(family: str) -> None:
    now = utcnow()
    rows = db.session.scalars(select(RefreshToken).where(RefreshToken.family == family)).all()
    for row in rows:
        if row.revoked_at is None:
            row.revoked_at = now
        if row.access_jti and row.access_expires_at and row.access_expires_at > now:
            revoke_access_token(row.access_jti, row.access_expires_at)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        digest = token_digest(refresh_token)
        now = utcnow()
        claimed = db.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_digest == digest,
                RefreshToken.rotated_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(rotated_at=now)
        ).rowcount
        row = db.session.get(RefreshToken, digest)
        if claimed == 1:
            return row
        if row is not None and row.rotated_at is not None:
            # Reuse of a rotated token: someone holds a copy. Kill the whole family.
            revoke_family(row.family)
        db.session.commit()
        return None

    def authenticate_user(self, refresh_token: RefreshToken) -> Account | None:
        account = active_account(refresh_token.account_id)
        if account is not None:
            context = auth_context()
            context.auth_time = refresh_token.auth_time
            context.amr = list(refresh_token.amr or [])
            context.session_id = refresh_token.session_id
            g.refresh_family = refresh_token.family
        return account

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        """Marked rotated when claimed; kept to detect reuse."""
        db.session.commit()


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS


class IdTokenIssuer:
    """What the ID token needs, shared by the code flow, refresh and the WeChat exchange."""

    def resolve_client_private_key(self, client: Client) -> Any:
        return keyring().current(self.get_client_algorithm(client)).private

    def get_client_algorithm(self, client: Client) -> str:
        return client.id_token_signed_response_alg or "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        key = keyring().current(self.get_client_algorithm(client))
        return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer(),
            "aud": [client.client_id],
            "azp": client.client_id,
            "iat": now,
            "exp": now + int(current_app.config["IDP_ID_TOKEN_TTL"]),
        }
        context = auth_context()
        if context.auth_time:
            claims["auth_time"] = context.auth_time
        if context.session_id:
            claims["sid"] = context.session_id
        if context.amr:
            claims["amr"] = context.amr
        return claims

    def generate_user_info(self, user: Account, scope: str) -> dict[str, Any]:
        """The ID token's claims: from this process's claims cache when the account has not
        changed since (idp.caching), else from the database (2 queries)."""
        client = g.get("token_client")
        appid = client.wechat_appid if client else None
        # The id from the identity key: `user.id` would reload the row the commit expired.
        identity = inspect(user).identity
        account_id = str(identity[0]) if identity else user.id
        cached = cached_user_claims(account_id, "", scope, appid)
        return cached if cached is not None else user_claims(user, scope, appid)


class OpenIDConnectCode(IdTokenIssuer, OpenIDCode):
    def exists_nonce(self, nonce: str, request: Any) -> bool:
        """A nonce seen in a still-live code of the same client is a replayed request. Authlib
        asks twice per authorization request (validation, then the response): one query."""
        asked = (request.payload.client_id, nonce)
        if g.get("idp_nonce_checked") == asked:
            return False
        seen = (
            db.session.scalars(
                select(AuthorizationCode.code_digest).where(
                    AuthorizationCode.client_id == request.payload.client_id,
                    AuthorizationCode.nonce == nonce,
                    AuthorizationCode.expires_at > utcnow(),
                )
            ).first()
            is not None
        )
        if not seen:
            g.idp_nonce_checked = asked
        return seen

    def process_token(self, grant: Any, response: Any) -> Any:
        g.token_client = grant.request.client
        return super().process_token(grant, response)


class OpenIDConnectRefresh(IdTokenIssuer, OpenIDCode):
    """OIDC Core §12.2: a refresh may return a new ID token (without a nonce)."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_create_token_response", self.process_token)

    def process_token(self, grant: Any, response: Any) -> Any:
        g.token_client = grant.request.client
        _, token, _ = response
        if token.get("scope") and is_openid_scope(token["scope"]):
            token["id_token"] = self.encode_id_token(token, grant.request)
        return token


def new_family() -> str:
    return generate_token(24)
