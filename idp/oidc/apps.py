"""The apps an account is connected to, and revoking one (the account centre's "connected apps").

An app is connected while it holds a consent or a live refresh token of the account. Revoking it
is one transaction: the consent goes, every refresh-token family of that client is revoked with
the access tokens issued beside them, unused codes expire, and the client — when it registered a
back-channel logout URI — hears of each IdP session it had tokens in (Back-Channel Logout 1.0
§2.5) and, at its events URI, a `consent-revoked` Security Event Token (RFC 8417) naming the
scopes withdrawn. Other apps and the IdP sessions themselves are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, union, update

from idp.extensions import db
from idp.identity import audit, hooks
from idp.identity.account_events import CONSENT_REVOKED
from idp.identity.accounts import IdentityError
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.oidc.credentials import revoke_refresh_tokens
from idp.oidc.models import (
    AuthorizationCode,
    Client,
    Consent,
    RefreshToken,
    RevokedAccessToken,
)


class NotConnected(IdentityError):
    """The account holds neither a consent nor a live token of that client."""


@dataclass
class ConnectedApp:
    client: Client
    scopes: set[str] = field(default_factory=set)
    granted_at: datetime | None = None
    last_used_at: datetime | None = None
    live_tokens: int = 0


def connected_apps(account: Account) -> list[ConnectedApp]:
    """Two queries: the consents, then the live refresh tokens (each with its client)."""
    apps: dict[str, ConnectedApp] = {}
    consents = db.session.execute(
        select(Consent, Client)
        .join(Client, Client.client_id == Consent.client_id)
        .where(Consent.account_id == account.id)
    ).all()
    for consent, client in consents:
        app = apps.setdefault(client.client_id, ConnectedApp(client))
        app.scopes.update(consent.scopes or [])
        app.granted_at = consent.granted_at
        app.last_used_at = consent.granted_at
    now = utcnow()
    tokens = db.session.execute(
        select(RefreshToken, Client)
        .join(Client, Client.client_id == RefreshToken.client_id)
        .where(
            RefreshToken.account_id == account.id,
            RefreshToken.revoked_at.is_(None),
            RefreshToken.rotated_at.is_(None),
            RefreshToken.expires_at > now,
        )
    ).all()
    for token, client in tokens:
        app = apps.setdefault(client.client_id, ConnectedApp(client))
        app.scopes.update(token.scope.split())
        app.live_tokens += 1
        if app.last_used_at is None or token.issued_at > app.last_used_at:
            app.last_used_at = token.issued_at
    return sorted(apps.values(), key=lambda app: app.client.name.lower())


def revoke_app(account: Account, client_id: str, actor: Actor) -> dict[str, int]:
    """Disconnects the client from the account (see the module docstring); the caller commits.
    Raises NotConnected when there is nothing to revoke."""
    client = db.session.get(Client, client_id)
    consent = db.session.scalars(
        select(Consent).where(Consent.account_id == account.id, Consent.client_id == client_id)
    ).first()
    tokens = list(
        db.session.scalars(
            select(RefreshToken).where(
                RefreshToken.account_id == account.id,
                RefreshToken.client_id == client_id,
                RefreshToken.revoked_at.is_(None),
            )
        )
    )
    if client is None or (consent is None and not tokens):
        raise NotConnected("that app is not connected to this account")
    now = utcnow()
    sessions = _sessions_with_tokens_of(account, client_id)
    if consent is not None:
        db.session.delete(consent)
    revoked = revoke_refresh_tokens(tokens, now)
    _list_code_access_tokens(account, client_id, now)
    db.session.execute(
        update(AuthorizationCode)
        .where(
            AuthorizationCode.account_id == account.id,
            AuthorizationCode.client_id == client_id,
            AuthorizationCode.used_at.is_(None),
            AuthorizationCode.expires_at > now,
        )
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    told = sum(hooks.client_signed_out(client_id, account.id, sid) for sid in sessions)
    hooks.announce_account_event(
        CONSENT_REVOKED, account.id, actor, audience=client_id,
        details={"client_id": client_id, "scopes": sorted(consent.scopes or []) if consent else []},
    )
    result = {"consent": int(consent is not None), "refresh_tokens": revoked, "logouts": told}
    audit.record("app.revoke", actor, account.id, reason="account centre",
                 client_id=client_id, **result)
    return result


def _list_code_access_tokens(account: Account, client_id: str, now: datetime) -> None:
    """Access tokens issued from a code without a refresh token die by the revocation list."""
    ttl = timedelta(seconds=int(current_app.config["IDP_ACCESS_TOKEN_TTL"]))
    jtis = db.session.scalars(
        select(AuthorizationCode.access_jti).where(
            AuthorizationCode.account_id == account.id,
            AuthorizationCode.client_id == client_id,
            AuthorizationCode.access_jti.is_not(None),
            AuthorizationCode.used_at > now - ttl,
        )
    ).all()
    for jti in jtis:
        if jti and db.session.get(RevokedAccessToken, jti) is None:
            db.session.add(RevokedAccessToken(jti=jti, expires_at=now + ttl))


def _sessions_with_tokens_of(account: Account, client_id: str) -> list[str]:
    ids = union(
        select(AuthorizationCode.session_id).where(
            AuthorizationCode.account_id == account.id,
            AuthorizationCode.client_id == client_id,
        ),
        select(RefreshToken.session_id).where(
            RefreshToken.account_id == account.id, RefreshToken.client_id == client_id
        ),
    ).subquery()
    return sorted(sid for sid in db.session.scalars(select(ids.c.session_id)) if sid)
