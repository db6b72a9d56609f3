"""The authorization code grant, filled into Authlib's hooks, and what the token endpoint's
grants share: the account that may hold tokens, the ID token, a family's revocation. (The
refresh and client_credentials grants are plain functions: `refresh_grant.py`,
`client_credentials.py`.)

Security properties, each with its spec:
- codes are single-use and bound to client, redirect URI and PKCE verifier (RFC 6749 §4.1.2,
  RFC 7636); a replayed code revokes what was issued from it (RFC 6749 §4.1.2, RFC 9700 §4.5);
- a used refresh token presented again revokes the family (`revoke_family`, RFC 9700
  §4.14.2; the rotation is `refresh_grant.py`);
- PKCE with S256 only, required of public clients, and no downgrade (RFC 9700 §2.1.1, §4.8).
"""

from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode, OpenIDToken
from authlib.oidc.core.grants.util import create_half_hash
from flask import current_app
from sqlalchemy import inspect, select

from idp import statements_alone
from idp.accounts.sessions import signed_in
from idp.extensions import db, stage_write
from idp.identity.accounts import resolve_account
from idp.identity.claims import cached_user_claims, user_claims
from idp.identity.models import Account
from idp.identity.status import may_hold_tokens
from idp.models_base import loaded_instance, utcnow
from idp.observability import metrics
from idp.oidc import nonces, refresh_tokens, releases, sealed_codes
from idp.oidc import token_statements as statements
from idp.oidc.context import auth_context, issuer, keyring
from idp.oidc.models import ACR_MFA, AuthorizationCode, Client, RefreshToken, token_digest
from idp.oidc.tokens import AccessTokenGenerator, revoke_access_token, unverified_claims

CLIENT_AUTH_METHODS = [
    "client_secret_basic",
    "client_secret_post",
    "client_assertion_jwt",  # Authlib's name for private_key_jwt
    "none",
]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "client_assertion_jwt"]
# RFC 6749 §5.1: a token answer is JSON and never cached.
TOKEN_HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                 ("Pragma", "no-cache")]
# The access tokens of the grants that are plain functions (refresh, client_credentials).
ACCESS_TOKENS = AccessTokenGenerator()


def active_account(account_id: str) -> Account | None:
    account = resolve_account(account_id)
    if account is None or account.id != account_id or not may_hold_tokens(account):
        return None  # merged away, disabled or pending deletion: nothing more is issued
    return account


@dataclass(frozen=True)
class TokenHolder:
    """The account tokens are about to be issued to, as the token code reads it: its id, and
    its claims for `scope` as `cached_user_claims` gave them (the ID token's, when it is
    issued for the same scope: `id_token_claims`), without its row."""

    id: str
    scope: str
    claims: dict[str, Any]

    def get_user_id(self) -> str:
        return self.id


def token_holder(account_id: str, scope: str, client: Any) -> TokenHolder | None:
    """`active_account`'s answer without loading the row: the account's claims for the tokens
    about to be issued, from this process's claims cache when nothing changed since (exact
    across processes: `idp.caching`'s versions, the Redis `MGET` the ID token reads anyway),
    are None exactly when it may hold no token (merged away, disabled, pending deletion)."""
    appid = client.wechat_appid if client is not None else None
    claims = cached_user_claims(account_id, "", scope, appid)
    return None if claims is None else TokenHolder(account_id, scope, claims)


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
    _code_row: dict[str, Any]

    def generate_authorization_code(self) -> str:
        """The code sealing its grant (`idp.oidc.sealed_codes`), else 48 random characters,
        288 bits (RFC 6749 §10.10). Its row's values are kept for `save_authorization_code`."""
        self._code_row = _code_row(self.request)
        return sealed_codes.seal(self._code_row) or secrets.token_urlsafe(36)

    def save_authorization_code(self, code: str, request: Any) -> None:
        """One statement: the code's `INSERT`, which also makes the nonce replay check when
        validation deferred it (`idp.oidc.nonces`), refusing as that check would."""
        now = utcnow()
        row = self._code_row  # Authlib generates the code, then saves it, on one grant
        values = {f"code_{name}": value for name, value in row.items()}
        values["code_code_digest"] = token_digest(code)
        pending = nonces.take_pending(row["nonce"])
        if pending is None:
            stage_write((statements.INSERT_CODE, values))  # no object to track and flush
        elif not nonces.insert_code_unless_replayed(values, now):
            raise nonces.refusal(pending)
        statements_alone.commit()  # the staged insert alone, or what else was begun

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        """The code's grant: the one it carries (`idp.oidc.sealed_codes`), else its row, read.
        Its claim is the redemption's one write (`redeem`), made once the whole answer is
        built. A used code presented again is a replay: what was issued from it is revoked
        (RFC 6749 §4.1.2) — when its row is read, or when its claim fails. The row comes back
        detached."""
        digest = token_digest(code)
        carried = sealed_codes.unseal(code)
        if carried is not None:
            if carried["client_id"] != client.client_id:
                return None
            if carried["expires_at"] <= utcnow():
                return None
            return loaded_instance(AuthorizationCode, {
                **carried, "code_digest": digest, "used_at": None, "token_family": None,
                "access_jti": None})
        found = statements.first_alone(statements.READ_CODE, digest=digest)
        if found is None or found["client_id"] != client.client_id:
            return None
        row = loaded_instance(AuthorizationCode, found)
        if row.used_at is not None:
            _replayed(row.code_digest)
            return None
        return row if row.expires_at > utcnow() else None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Marked used by its claim (`redeem`); the row stays to recognise a replay."""

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Authlib's answer (the ID token included, by its hook), then the redemption's one
        write: a failure on the way leaves the code unused, so the client's retry is not taken
        for a replay. A code claimed by a concurrent redemption since it was read is a
        replay, as the second of two redemptions is."""
        answer = super().create_token_response()
        if not redeem(self.request, self._issued):
            _replayed(self.request.authorization_code.code_digest)
            raise InvalidGrantError()
        return answer

    def save_token(self, token: dict[str, Any]) -> None:
        """Kept for `create_token_response`, which writes it with the code's claim."""
        self._issued = token

    def authenticate_user(self, authorization_code: AuthorizationCode) -> TokenHolder | None:
        account = token_holder(
            authorization_code.account_id, authorization_code.scope, self.request.client
        )
        if account is not None:
            context = auth_context()
            context.auth_time = authorization_code.auth_time
            context.amr = list(authorization_code.amr or [])
            context.session_id = authorization_code.session_id
        return account


def _code_row(request: Any) -> dict[str, Any]:
    """The code's row (but its digest), by column name: the authorization request's grant to
    the account signed in in this browser."""
    login = signed_in()
    if login is None or login.account_id != request.user.id:
        raise RuntimeError("A code is issued to the account of this browser's session only.")
    data = request.payload.data
    ttl = int(current_app.config["IDP_AUTHORIZATION_CODE_TTL"])
    return {
        "client_id": request.client.client_id,
        "account_id": request.user.id,
        "redirect_uri": request.payload.redirect_uri or request.client.redirect_uris[0],
        "scope": request.scope or "",
        "nonce": data.get("nonce"),
        "code_challenge": data.get("code_challenge"),
        "code_challenge_method": data.get("code_challenge_method"),
        "auth_time": int(login.auth_time.timestamp()),
        "amr": login.amr.split(),
        "session_id": login.id,
        "expires_at": utcnow() + timedelta(seconds=ttl),
    }


def redeem(request: Any, token: dict[str, Any]) -> bool:
    """The code's claim — with what was issued from it — the refresh token and the record of
    the released claims, atomically (`token_statements.redemption`). False when the code was
    no longer claimable: then nothing was written."""
    code: AuthorizationCode = request.authorization_code
    client_id = request.client.client_id
    now = utcnow()
    access = unverified_claims(token["access_token"])
    refresh = token.get("refresh_token")
    release = releases.release_values(request.user.id, client_id, token.get("scope"), now)
    values: dict[str, Any] = {
        "redeem_digest": code.code_digest, "redeem_client": client_id, "redeem_now": now,
        "redeem_at": now, "redeem_jti": access["jti"], "redeem_family": None, **release,
    }
    if refresh:
        family = values["redeem_family"] = refresh_tokens.new_family()
        token["refresh_token"], row = refresh_tokens.issue(
            refresh, family, client_id, request.user.id, token.get("scope", ""), access, now)
        values.update(row)
    claimed = statements.write_claiming(
        functools.partial(statements.redemption, refresh=bool(refresh)), values, release)
    if claimed:
        metrics.count_token_issued(AuthorizationCodeGrant.GRANT_TYPE)
    return claimed


def _replayed(digest: str) -> None:
    """A used code presented again: what was issued from it is revoked (RFC 6749 §4.1.2)."""
    row = db.session.get(AuthorizationCode, digest)
    if row is not None and row.used_at is not None:
        revoke_issued_from_code(row)
    db.session.commit()


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


class IdTokenIssuer(OpenIDToken):
    """The ID token (OIDC Core §2, §3.1.3.6), shared by the code flow, refresh and the WeChat
    exchange: its claims are `idp.identity.claims.user_claims` for the client the token is
    issued to, as userinfo serves them."""

    def resolve_client_private_key(self, client: Client) -> Any:
        return keyring().current(self.get_client_algorithm(client)).private

    def get_client_algorithm(self, client: Client) -> str:
        return client.id_token_signed_response_alg or "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        key = keyring().current(self.get_client_algorithm(client))
        return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}

    def get_client_claims(self, client: Client, issued_at: int | None = None) -> dict[str, Any]:
        now = int(time.time()) if issued_at is None else issued_at
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
            if "mfa" in context.amr:
                claims["acr"] = ACR_MFA  # OIDC Core §2; idp.oidc.step_up
        return claims

    def encode_id_token(self, token: dict[str, Any], request: Any,
                        issued_at: int | None = None) -> str:
        """Authlib's steps, with the client handed to the claims rather than guessed;
        `issued_at` as the access token's generator takes it."""
        client: Client = request.client
        key = keyring().current(self.get_client_algorithm(client))
        claims = self.get_client_claims(client, issued_at)
        claims.setdefault("auth_time", claims["iat"])
        if request.authorization_code is not None:
            claims.update(self.get_authorization_code_claims(request.authorization_code))
        if token.get("access_token"):  # OIDC Core §3.1.3.6
            at_hash = create_half_hash(token["access_token"], key.alg)
            if at_hash is not None:
                claims["at_hash"] = at_hash.decode()
        claims.update(id_token_claims(request.user, token["scope"], client))
        return key.sign_jwt(self.get_encode_header(client), claims)


def id_token_claims(user: Account | TokenHolder, scope: str, client: Client) -> dict[str, Any]:
    """The user's claims for `client`: those `token_holder` read for this scope, else from this
    process's claims cache when the account has not changed since (idp.caching), else from
    the database (2 queries)."""
    if isinstance(user, TokenHolder):
        if user.scope == scope:
            return dict(user.claims)
        account_id = user.id
    else:
        # The id from the identity key: `user.id` would reload the row the commit expired.
        identity: tuple[Any, ...] | None = inspect(user).identity
        account_id = str(identity[0]) if identity else user.id
    cached = cached_user_claims(account_id, "", scope, client.wechat_appid)
    if cached is not None:
        return cached
    if isinstance(user, TokenHolder):  # None from the cache: it may hold no token now
        raise InvalidGrantError("The account of this grant cannot be issued tokens.")
    return user_claims(user, scope, client.wechat_appid)


class OpenIDConnectCode(IdTokenIssuer, OpenIDCode):
    def validate_openid_authorization_request(self, grant: Any, redirect_uri: Any) -> None:
        """Authlib's nonce check, unless the authorization view deferred it to the code's
        insert (`idp.oidc.nonces`)."""
        if not nonces.note(grant):
            super().validate_openid_authorization_request(grant, redirect_uri)

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        """A nonce seen in a still-live code of the same client is a replayed request: one
        indexed query."""
        return nonces.seen(request.payload.client_id, nonce)
