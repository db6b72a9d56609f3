"""OpenID Connect Back-Channel Logout 1.0: when an IdP session ends, every relying party that
received tokens in it and registered a `backchannel_logout_uri` is told, server to server.

Logout tokens go through the events outbox (same transaction as the session's end, retries,
dead letter, admin retry); `idp.events.delivery` signs and POSTs them. The engine says which
session ended (`idp.identity.hooks.session_ended`, `client_signed_out`) and
`idp.events.listeners` calls this module.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from sqlalchemy import select, union

from idp.events.models import DeliveryStatus, EventDelivery
from idp.extensions import db
from idp.models_base import utcnow
from idp.oidc.context import issuer
from idp.oidc.models import AuthorizationCode, Client, RefreshToken

BACKCHANNEL_LOGOUT = "backchannel-logout"  # EventDelivery.event_type
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"  # §2.4, the `typ` header


def logout_token_claims(client_id: str, sub: str, sid: str) -> dict[str, Any]:
    """§2.4: iss, aud, iat, exp, jti, sub and sid, the logout event, and never a nonce."""
    now = int(time.time())
    return {
        "iss": issuer(),
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(18),
        "sub": sub,
        "sid": sid,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }


def clients_of_session(session_id: str) -> list[Client]:
    """The relying parties that got tokens in this IdP session and asked to hear of its end."""
    client_ids = union(
        select(AuthorizationCode.client_id).where(AuthorizationCode.session_id == session_id),
        select(RefreshToken.client_id).where(RefreshToken.session_id == session_id),
    ).subquery()
    return list(
        db.session.scalars(
            select(Client).where(
                Client.client_id.in_(select(client_ids.c.client_id)),
                Client.backchannel_logout_uri.is_not(None),
            )
        )
    )


def queue_logout_tokens(session_id: str, account_id: str) -> int:
    """Adds one delivery per interested client to the caller's transaction."""
    clients = clients_of_session(session_id)
    for client in clients:
        queue_client_logout(client, account_id, session_id)
    return len(clients)


def queue_client_logout(client: Client, account_id: str, session_id: str) -> bool:
    """One logout token to one client (the user revoked that app), if it asked for them."""
    if not client.backchannel_logout_uri:
        return False
    db.session.add(
        EventDelivery(
            client_id=client.client_id,
            event_type=BACKCHANNEL_LOGOUT,
            payload=json.dumps(logout_token_claims(client.client_id, account_id, session_id)),
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
            created_at=utcnow(),
        )
    )
    return True
