"""JWT access tokens (RFC 9068): minted with the current key, checked offline or by the IdP.

No row is written per access token; a revoked one is listed by `jti` until it expires.
Whether a token is still good (not listed, account present and active, issued after the
account's `tokens_valid_after`) is cached per `jti` in each process, exact across processes
through the versions of `idp.caching`: a repeated check costs one Redis `MGET`, no SQL.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import exists, func, select

from idp.caching import BoundedCache, versions_for
from idp.extensions import db
from idp.identity.models import Account, LoginSession
from idp.identity.status import may_hold_tokens
from idp.oidc.client_cache import cached_client
from idp.oidc.context import auth_context, issuer, keyring
from idp.oidc.models import ACR_MFA, Client, RevokedAccessToken, TokenCutoff

ACCESS_TOKEN_TYPE = "at+jwt"
SIGNING_ALGORITHMS = ["RS256", "ES256"]


class AccessTokenGenerator(JWTBearerTokenGenerator):
    """Authlib's RFC 9068 generator, signing with the key ring's current key and its `kid`."""

    def __init__(self) -> None:
        super().__init__(
            issuer=None,
            # secrets, not Authlib's generate_token: that draws one urandom() per character.
            refresh_token_generator=lambda **_: secrets.token_urlsafe(36),
            expires_generator=lambda client, grant_type: int(
                current_app.config["IDP_ACCESS_TOKEN_TTL"]
            ),
        )

    def access_token_generator(self, client: Client, grant_type: str, user: Any, scope: str,
                               *, issued_at: int | None = None, jti: str | None = None) -> str:
        """`issued_at` and `jti`, when given, make the token again (a refresh's answer rebuilt,
        `idp.oidc.refresh_grant`): RS256 signs the same claims to the same bytes."""
        now = int(time.time()) if issued_at is None else issued_at
        context = auth_context()
        claims: dict[str, Any] = {
            "iss": issuer(),
            "sub": user.id if user is not None else client.client_id,
            "aud": client.client_id,
            "client_id": client.client_id,
            "iat": now,
            "exp": now + int(current_app.config["IDP_ACCESS_TOKEN_TTL"]),
            "jti": jti or secrets.token_urlsafe(16),
            "scope": scope or "",
        }
        if user is not None and context.auth_time:
            claims["auth_time"] = context.auth_time
        if user is not None and context.session_id:
            claims["sid"] = context.session_id
        if user is not None and context.amr:
            # RFC 9068 §2.2.3.1: how the user authenticated, for resource servers and for this
            # IdP's own APIs that mint tokens again (phone binding keeps the caller's factors).
            claims["amr"] = list(context.amr)
            if "mfa" in context.amr:
                claims["acr"] = ACR_MFA
        key = keyring().current("RS256")
        header = {"alg": key.alg, "typ": ACCESS_TOKEN_TYPE, "kid": key.kid}
        return key.sign_jwt(header, claims)


def untrusted_claims(token: Any, max_length: int = 8192) -> dict[str, Any] | None:
    """The claims of a JWT from outside, unverified: only a hint of where to look or what to
    count, never a fact. None for anything that is not a compact JWT of at most `max_length`
    characters whose payload is a JSON object."""
    import base64
    import binascii
    import json

    if not isinstance(token, str) or len(token) > max_length or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT we have just minted ourselves (no need to check our own signature)."""
    import base64
    import json

    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@dataclass
class AccessToken:
    """A verified access token, shaped for Authlib's resource protector and endpoints."""

    claims: dict[str, Any]

    @property
    def scope(self) -> str:
        return self.claims.get("scope", "")

    @property
    def jti(self) -> str:
        return self.claims["jti"]

    @property
    def client_id(self) -> str:
        return self.claims["client_id"]

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.claims["exp"], UTC)

    def get_scope(self) -> str:
        return self.scope

    def get_client(self) -> Any:
        """The client the token was issued to: a `ClientSnapshot` from the per-process cache."""
        return cached_client(self.client_id)

    def get_user(self) -> Account | None:
        account = db.session.get(Account, self.claims.get("sub"))
        return account if may_hold_tokens(account) else None

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def is_expired(self) -> bool:
        return self.claims["exp"] <= time.time()

    def is_revoked(self) -> bool:
        return access_token_revoked(self.claims)

    def is_client_token(self) -> bool:
        """client_credentials: issued to the client itself, no account behind it."""
        return self.claims.get("sub") == self.claims.get("client_id")


def verified_jwt(token: str) -> jwt.Token:
    """A JWT signed by one of our keys; a key another process made since this one last read the
    keys is looked up once (`KeyRing.look_again_for`)."""
    ring = keyring()
    try:
        return jwt.decode(token, ring.verification_keys(), algorithms=SIGNING_ALGORITHMS)
    except (JoseError, ValueError):
        if not ring.look_again_for(token):
            raise
        return jwt.decode(token, ring.verification_keys(), algorithms=SIGNING_ALGORITHMS)


def decode_access_token(token: str) -> AccessToken | None:
    """Signature, issuer, type and expiry (RFC 9068 §4); None for anything that is not a live
    token of ours. An ID token is not an access token: its `typ` differs."""
    ring = keyring()
    claims = ring.verified_payload(token, ACCESS_TOKEN_TYPE)
    if claims is None and ring.look_again_for(token):
        claims = ring.verified_payload(token, ACCESS_TOKEN_TYPE)
    if claims is None or not _valid_access_claims(claims, issuer(), time.time()):
        return None
    return AccessToken(claims)


def _valid_access_claims(claims: dict[str, Any], expected_issuer: str, now: float) -> bool:
    """RFC 9068 §2.2 and RFC 7519 §4.1: our issuer, a future `exp`, a `jti` and a `client_id`;
    `nbf` and `iat`, when present, numbers (`nbf` passed)."""
    expires, not_before = claims.get("exp"), claims.get("nbf", 0)
    if not _is_number(expires) or not _is_number(not_before):
        return False
    return (
        claims.get("iss") == expected_issuer
        and expires > now
        and not_before <= now
        and _is_number(claims.get("iat", 0))
        and isinstance(claims.get("jti"), str) and bool(claims["jti"])
        and isinstance(claims.get("client_id"), str) and bool(claims["client_id"])
    )  # fmt: skip


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


# jti -> revoked? Bounded; each entry valid for the versions it was read under (idp.caching).
TOKEN_STATES: BoundedCache[bool] = BoundedCache(max_entries=50_000)


def access_token_revoked(claims: dict[str, Any]) -> bool:
    """Round trips: none to the database when this process has checked the same `jti` since
    the last change to its account or its revocation (one Redis `MGET` for the versions);
    else one SQL statement."""
    jti, sub = str(claims.get("jti")), str(claims.get("sub"))
    versions = versions_for(sub, jti)
    if versions is not None:
        known = TOKEN_STATES.get(jti, versions)
        if known is not None:
            return known
    revoked = _revoked_in_database(claims)
    if versions is not None:
        TOKEN_STATES.put(jti, versions, revoked)
    return revoked


def _revoked_in_database(claims: dict[str, Any]) -> bool:
    listed = exists().where(RevokedAccessToken.jti == claims["jti"]).label("listed")
    # `idp tokens revoke-all` (idp/oidc/revocation.py): the latest cut-off for every token.
    revoke_all = select(func.max(TokenCutoff.not_before)).scalar_subquery().label("revoke_all")
    if claims.get("sub") == claims.get("client_id"):
        # client_credentials: no account behind it, only the revocation list and the cut-off.
        revoked, everything_before = db.session.execute(select(listed, revoke_all)).one()
        return bool(revoked) or _issued_by(claims, everything_before)
    # One round trip for all checks: the account (which lands in the identity map, so the
    # `get_user` that follows costs no query), whether the `jti` is on the revocation list, and
    # the revoke-all cut-off.
    row = db.session.execute(
        select(Account, listed, revoke_all).where(Account.id == str(claims.get("sub")))
    ).first()
    if row is None:
        return True  # merged away (or never existed): its tokens died with it
    account, revoked, everything_before = row
    if revoked or _issued_by(claims, everything_before):
        return True
    if not may_hold_tokens(account):
        return True  # disabled or pending deletion: no token of it is good
    return issued_before_cutoff(claims, account.tokens_valid_after)


def issued_before_cutoff(claims: dict[str, Any], cutoff: datetime | None) -> bool:
    """Whether the token predates the account's `tokens_valid_after`. `iat` counts whole seconds
    (RFC 7519 §2 NumericDate, as we mint it): a token of an earlier second is dead, one of a
    later second alive. In the cutoff's own second it lives only if its `sid` names a session
    begun at or after the cutoff and still live: the new session of a user who just reset their
    password. That costs one query, and only in that second; a token without `sid` dies."""
    if cutoff is None:
        return False
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=UTC)  # stored as UTC (models_base.UTCDateTime)
    issued_at, cutoff_second = claims.get("iat", 0), int(cutoff.timestamp())
    if issued_at != cutoff_second:
        return bool(issued_at < cutoff_second)
    session_id = claims.get("sid")
    if not isinstance(session_id, str):
        return True
    begun_since = db.session.scalar(
        select(LoginSession.id).where(
            LoginSession.id == session_id,
            LoginSession.created_at >= cutoff,
            LoginSession.ended_at.is_(None),
        )
    )
    return begun_since is None


def _issued_by(claims: dict[str, Any], cutoff: datetime | None) -> bool:
    """Issued at or before `cutoff` (`iat` is whole seconds: the same second counts as before)."""
    if cutoff is None:
        return False
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=UTC)  # stored as UTC (models_base.UTCDateTime)
    return int(claims.get("iat", 0)) <= int(cutoff.timestamp())


def revoke_access_token(jti: str, expires_at: datetime) -> None:
    if db.session.get(RevokedAccessToken, jti) is None:
        db.session.add(RevokedAccessToken(jti=jti, expires_at=expires_at))


class AccessTokenValidator(BearerTokenValidator):
    """Bearer validation for the IdP's own resources (userinfo, /wechat/phone)."""

    def authenticate_token(self, token_string: str) -> AccessToken:
        token = decode_access_token(token_string)
        if token is None:
            raise InvalidTokenError(realm=self.realm)
        return token

    def validate_token(self, token: AccessToken, scopes: Any, request: Any) -> None:
        # `is_revoked` covers the account too (present, active, `tokens_valid_after`); a
        # client's own token has no user and is refused here.
        if token.is_expired() or token.is_client_token() or token.is_revoked():
            raise InvalidTokenError(realm=self.realm)
        super().validate_token(token, scopes, request)
