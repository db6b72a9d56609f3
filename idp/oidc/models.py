"""Clients, signing keys, codes, refresh tokens, revoked access tokens and consents."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import scope_to_list
from sqlalchemy import DDL, JSON, Boolean, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from idp.crypto import digest
from idp.extensions import Model
from idp.models_base import UTCDateTime, utcnow
from idp.oidc.discovery import TOKEN_EXCHANGE

ACR_MFA = "urn:idp:acr:mfa"  # the `acr` of a sign-in with a second factor (idp.oidc.step_up)

# Codes, refresh tokens and client secrets are stored as SHA-256 digests: a dump grants nothing.
token_digest = digest


class Client(Model, ClientMixin):
    __tablename__ = "oauth_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # SHA-256 of a 256-bit random secret: high entropy, so a fast hash is the right one.
    client_secret_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(32), default="client_secret_basic"
    )
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(Text, default="openid profile")
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(8), default="RS256")
    is_first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    wechat_appid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    events_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The account event types pushed to `events_uri`; None: merges and undos only, as before.
    event_types: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # private_key_jwt
    # Every sign-in to this client needs a second factor (idp.oidc.step_up).
    require_mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": list(self.post_logout_redirect_uris or [])}

    # Authlib's ClientMixin.
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.redirect_uris or []
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(scope_to_list(self.scope))
        return " ".join(s for s in scope_to_list(scope) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string comparison (RFC 9700 §4.1.1): no prefixes, no wildcards.
        return redirect_uri in (self.redirect_uris or [])

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.client_secret_digest:
            return False
        return hmac.compare_digest(self.client_secret_digest, token_digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            if method == "client_assertion_jwt":
                return self.token_endpoint_auth_method == "private_key_jwt"
            return self.token_endpoint_auth_method == method
        # Revocation and introspection accept the client's own method too.
        return self.check_endpoint_auth_method(method, "token")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in (self.grant_types or [])

    def check_grant_type(self, grant_type: str) -> bool:
        granted = self.grant_types or []
        if grant_type == "refresh_token" and TOKEN_EXCHANGE in granted:
            # CONTRACT §5 registers a mini-program with the exchange alone; the refresh token it
            # gets for `offline_access` must still be usable.
            return True
        return grant_type in granted


class SigningKey(Model):
    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(8))
    private_jwk_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuthorizationCode(Model):
    """One row per authorization code (RFC 6749 §4.1.2): the truth of its single use.

    On PostgreSQL the table is UNLOGGED (`UNLOGGED_CODES`): a code lives a minute, so its
    insert and its claim write no WAL and the insert's commit waits for no disk flush
    (bench/README.md, "Thirteenth session"). What that costs, failing closed: a database crash
    (not a clean restart) empties the table, so a code issued before it no longer redeems
    (`invalid_grant`: the browser signs in again) and a code replayed after it is refused
    without revoking what its first use issued; a standby holds no codes (after a failover,
    the same).
    """

    __tablename__ = "authorization_code"
    # The nonce replay check of every authorization request (OpenIDConnectCode.exists_nonce)
    # would otherwise scan every code. A hash index on PostgreSQL: a nonce has no length limit,
    # a btree entry does.
    __table_args__ = (Index("ix_authorization_code_nonce", "nonce", postgresql_using="hash"),)

    code_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_client.client_id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text, nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(8), nullable=True)
    auth_time: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # retention
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What was issued from the code, so that a replay can revoke it (RFC 6749 §4.1.2).
    token_family: Mapped[str | None] = mapped_column(String(64), nullable=True)
    access_jti: Mapped[str | None] = mapped_column(String(64), nullable=True)

    # Authlib's AuthorizationCodeMixin.
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return ACR_MFA if self.amr and "mfa" in self.amr else None

    def get_amr(self) -> list[str] | None:
        return self.amr or None


UNLOGGED_CODES = DDL("ALTER TABLE authorization_code SET UNLOGGED")
event.listen(AuthorizationCode.__table__, "after_create",
             UNLOGGED_CODES.execute_if(dialect="postgresql"))


class RefreshToken(Model):
    """One row per refresh token; rotation chains rows of one `family`."""

    __tablename__ = "refresh_token"
    __table_args__ = (
        Index("ix_refresh_token_family", "family"),
        Index("ix_refresh_token_expires_at", "expires_at"),  # retention
    )

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(64))
    # The token this one succeeded in a rotation (a lost answer is rebuilt only for the token's
    # own successor: idp.oidc.refresh_grant). No index covers the columns a rotation changes,
    # so its UPDATE stays a heap-only tuple update, with no index entry written.
    predecessor_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_client.client_id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    scope: Mapped[str] = mapped_column(Text)
    auth_time: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The access token issued alongside, so revoking the family kills it too.
    access_jti: Mapped[str | None] = mapped_column(String(64), nullable=True)
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # Authlib's TokenMixin.
    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.expires_at - utcnow()).total_seconds()))

    def is_expired(self) -> bool:
        return self.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or self.rotated_at is not None


class RevokedAccessToken(Model):
    """JWT access tokens are not stored; a revoked one is listed by `jti` until it expires."""

    __tablename__ = "revoked_access_token"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Consent(Model):
    __tablename__ = "consent"
    __table_args__ = (Index("uq_consent_account_client", "account_id", "client_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_client.client_id"))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UsedNonce(Model):
    """Replay cache (client assertion `jti`s…) in the database when Redis is not configured."""

    __tablename__ = "used_nonce"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class TokenCutoff(Model):
    """`idp tokens revoke-all`: access tokens issued at or before `not_before` are rejected,
    whoever they were issued to (a restored database does not know which were revoked after
    its dump). The latest cut-off counts; rows stay as the record of when and by whom."""

    __tablename__ = "token_cutoff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClaimRelease(Model):
    """Which claims a client received about an account, and when (PIPL Art. 44, 45: who
    received my data): one row per (account, client, granted scope), with the first and the
    latest issuance. Written only by the token endpoint's existing write (code redemption,
    refresh, token exchange) as one upsert (`releases.record_release`); userinfo and
    introspection, the read paths, never write it. Claim names only, never a value."""

    __tablename__ = "claim_release"
    __table_args__ = (
        Index("uq_claim_release", "account_id", "client_id", "scope", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_client.client_id"), index=True)
    scope: Mapped[str] = mapped_column(Text)  # the granted scopes, sorted, space-separated
    claims: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_released_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_released_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
