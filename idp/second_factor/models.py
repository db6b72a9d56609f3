"""The tables of the second factors: an account's TOTP secrets and WebAuthn credentials, its
recovery codes, and the mini-program's sign-ins waiting for their second factor (`mfa_tokens.py`).
The admins' TOTP secret is a column of the account itself (`Account.totp_secret_encrypted`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import Model
from idp.models_base import UTCDateTime, utcnow


class SecondFactorKind:
    TOTP = "totp"  # RFC 6238, any authenticator app
    WEBAUTHN = "webauthn"  # a passkey or a security key (WebAuthn Level 2)


class SecondFactor(Model):
    """A second factor of an account: a TOTP secret (encrypted) or a WebAuthn credential."""

    __tablename__ = "second_factor"
    __table_args__ = (
        Index("uq_second_factor_credential", "credential_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(80), default="")
    secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)  # TOTP
    credential_id: Mapped[str | None] = mapped_column(String(255), nullable=True)  # base64url
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # COSE
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    # WebAuthn: "multi_device" (a synced passkey, amr `swk`) or "single_device" (`hwk`).
    device_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RecoveryCode(Model):
    """One-time codes for a lost second factor: shown once, stored as SHA-256 digests (each has
    50 random bits and is throttled like a TOTP code, so a fast hash is enough)."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class MfaChallenge(Model):
    """A token exchange that proved the first factor (WeChat) and waits for the second: the
    `mfa_token` the client was given, as a SHA-256 digest, bound to one client and one account.
    Single use, short-lived, and dead after a few wrong codes (`idp.second_factor.mfa_tokens`)."""

    __tablename__ = "mfa_challenge"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(36))
    # What the first step asked for and proved: carried into the tokens of the second.
    scope: Mapped[str] = mapped_column(Text, default="")
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
