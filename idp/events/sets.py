"""Security Event Tokens (RFC 8417): the claims of an account event and their signature."""

from __future__ import annotations

import secrets
import time
from typing import Any

from joserfc import jwt

from idp.identity.account_events import (
    ACCOUNT_CREATED as ACCOUNT_CREATED,
)
from idp.identity.account_events import (
    ACCOUNT_DELETED as ACCOUNT_DELETED,
)
from idp.identity.account_events import (
    ACCOUNT_DELETION_SCHEDULED as ACCOUNT_DELETION_SCHEDULED,
)
from idp.identity.account_events import (
    ACCOUNT_DISABLED as ACCOUNT_DISABLED,
)
from idp.identity.account_events import (
    ACCOUNT_ENABLED as ACCOUNT_ENABLED,
)
from idp.identity.account_events import (
    ACCOUNT_EVENT_TYPES as ACCOUNT_EVENT_TYPES,
)
from idp.identity.account_events import (
    ACCOUNT_MERGED as ACCOUNT_MERGED,
)
from idp.identity.account_events import (
    ACCOUNT_UNMERGED as ACCOUNT_UNMERGED,
)
from idp.identity.account_events import (
    CONSENT_REVOKED as CONSENT_REVOKED,
)
from idp.identity.account_events import (
    IDENTITY_LINKED as IDENTITY_LINKED,
)
from idp.identity.account_events import (
    IDENTITY_UNLINKED as IDENTITY_UNLINKED,
)
from idp.identity.account_events import (
    PHONE_CHANGED as PHONE_CHANGED,
)
from idp.identity.account_events import (
    PROFILE_UPDATED as PROFILE_UPDATED,
)
from idp.oidc.context import issuer, keyring

SET_TYPE = "secevent+jwt"  # RFC 8417 §2.3, the `typ` header
SET_MEDIA_TYPE = "application/secevent+jwt"  # RFC 8935 §2
SET_SIGNING_ALGORITHM = "RS256"

# What a relying party that chose nothing receives: what every one received before, and the
# withdrawal of a consent to itself (which no other party hears of).
DEFAULT_SUBSCRIPTION = (ACCOUNT_MERGED, ACCOUNT_UNMERGED, CONSENT_REVOKED)
EVENT_TYPE_PREFIX = "urn:idp:secevent:"


def event_type_uri(event_type: str) -> str:
    """RFC 8417 §2.2: events are keyed by a URI; ours are `urn:idp:secevent:<type>`."""
    return EVENT_TYPE_PREFIX + event_type


def subject(sub: str) -> dict[str, str]:
    """An `iss_sub` subject identifier (RFC 9493 §3.2.5)."""
    return {"format": "iss_sub", "iss": issuer(), "sub": sub}


def account_event(
    event_type: str, merged_sub: str, surviving_sub: str, *, actor: str = "", channel: str = ""
) -> dict[str, Any]:
    """The event body shared by merge and undo: which `sub` merged into (or out of) which."""
    return lifecycle_event(
        event_type, merged_sub, actor=actor, channel=channel,
        details={"merged_sub": merged_sub, "surviving_sub": surviving_sub},
    )


def lifecycle_event(
    event_type: str, sub: str, *, actor: str, channel: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The body of an account event: the account (`sub`), who did it and through which channel,
    and what changed by name only (claim names, identity kinds), never a value or a secret."""
    body: dict[str, Any] = {"subject": subject(sub), "sub": sub, "actor": actor, "channel": channel}
    body.update(details or {})
    return {event_type_uri(event_type): body}


def set_claims(audience: str, events: dict[str, Any], when: int | None = None) -> dict[str, Any]:
    """The claims of one SET for one relying party. `jti` is fixed here, when the event is
    queued, so that a receiver recognises a retried delivery (RFC 8935 §2.3)."""
    now = when if when is not None else int(time.time())
    return {
        "iss": issuer(),
        "iat": now,
        "toe": now,
        "jti": secrets.token_urlsafe(18),
        "aud": audience,
        "events": events,
    }


def sign_set(claims: dict[str, Any], token_type: str = SET_TYPE) -> str:
    """Signed with the key ring's current RS256 key, published in the JWKS under its `kid`.
    A logout token (Back-Channel Logout §2.4) is signed the same way with `typ: logout+jwt`."""
    key = keyring().current(SET_SIGNING_ALGORITHM)
    header = {"alg": key.alg, "typ": token_type, "kid": key.kid}
    return jwt.encode(header, claims, key.private, algorithms=[SET_SIGNING_ALGORITHM])
