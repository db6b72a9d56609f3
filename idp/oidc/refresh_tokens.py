"""What a refresh token is: its string and its row.

Every refresh token carries its grant — `<secret>.<grant>.<mac>`: family, client, account,
scope and how the user signed in (`CARRIED`), as base64url JSON, under a keyed tag (HMAC under
IDP_ENCRYPTION_KEY, so that only the IdP makes one) — so that its refresh builds the answer
from the token without reading the row first (`idp.oidc.refresh_grant`). The row stays the
truth of its state: named by the whole token's digest, it changes only by its rotation and its
revocation (a merge or an erasure revokes an account's tokens; none moves).

The secret of a family's first token is random; a successor's is the token it succeeds keyed
(`successor_secrets`), so a lost answer can be made again from the token presented
(`refresh_grant.repeated_answer`). Tokens issued before tokens carried their grant (a bare
secret) are read."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from flask import current_app

from idp.models_base import utcnow
from idp.oidc.context import auth_context, secret_box
from idp.oidc.models import token_digest

CARRIED = ("family", "client_id", "account_id", "scope", "auth_time", "amr", "session_id")
_MAC_BYTES = 16
# Longer than any grant this IdP writes (ids, a scope, a few amr values): not one of ours.
_MAX_GRANT_CHARACTERS = 4096


def issue(secret: str, family: str, client_id: str, account_id: str, scope: str,
          access: dict[str, Any], now: datetime | None = None,
          predecessor: str | None = None) -> tuple[str, dict[str, Any]]:
    """The token issued beside the access token whose claims are `access`, in the request's
    authentication context, and `token_statements.INSERT_REFRESH`'s parameters for its row;
    `predecessor`: the digest of the token it succeeds in a rotation."""
    context = auth_context()
    now = now or utcnow()
    ttl = timedelta(seconds=int(current_app.config["IDP_REFRESH_TOKEN_TTL"]))
    values = {
        "refresh_family": family,
        "refresh_predecessor_digest": predecessor,
        "refresh_client_id": client_id,
        "refresh_account_id": account_id,
        "refresh_scope": scope,
        "refresh_auth_time": context.auth_time or int(now.timestamp()),
        "refresh_amr": list(context.amr or []),
        "refresh_session_id": context.session_id,
        "refresh_access_jti": access["jti"],
        "refresh_access_expires_at": datetime.fromtimestamp(access["exp"], UTC),
        "refresh_issued_at": now,
        "refresh_expires_at": now + ttl,
    }
    token = _carrying(secret, [values[f"refresh_{name}"] for name in CARRIED])
    values["refresh_token_digest"] = token_digest(token)
    return token, values


def new_secret() -> str:
    """A family's first secret: 48 characters, 288 bits (RFC 6749 §10.10)."""
    return secrets.token_urlsafe(36)


def new_family() -> str:
    return secrets.token_urlsafe(18)


def successor_secrets(presented: str) -> list[str]:
    """The secret of the token that succeeds `presented` in its rotation: 48 characters (288
    bits, as a first token's), the current encryption key's tag first, then the older keys' (a
    rotation made just before the key changed)."""
    return [base64.urlsafe_b64encode(tag[:36]).decode()
            for tag in secret_box().tags(presented, "refresh-successor")]


def carried_grant(presented: str) -> SimpleNamespace | None:
    """The grant a token carries (`CARRIED`, and its `token_digest`), when its mac is one of
    ours; else None."""
    body, dot, mac = presented.rpartition(".")
    if not dot or "." not in body or len(mac) > 32:
        return None
    presented_mac = mac.encode()
    if not any(hmac.compare_digest(_b64(tag[:_MAC_BYTES]).encode(), presented_mac)
               for tag in secret_box().tags(body, "refresh-grant")):
        return None
    try:
        grant = json.loads(base64.urlsafe_b64decode(body.partition(".")[2] + "=="))
    except ValueError:
        return None
    if not isinstance(grant, list) or len(grant) != len(CARRIED):
        return None
    return SimpleNamespace(**dict(zip(CARRIED, grant, strict=True)),
                           token_digest=token_digest(presented))


def account_named(presented: str) -> str | None:
    """The account a token's grant names, its mac not checked: a hint, for reading ahead
    what that account's refresh will read (nothing is decided on it)."""
    parts = presented.split(".")
    if len(parts) != 3 or len(parts[1]) > _MAX_GRANT_CHARACTERS:
        return None
    try:
        grant = json.loads(base64.urlsafe_b64decode(parts[1] + "=="))
        account = grant[CARRIED.index("account_id")]
    except (ValueError, IndexError, TypeError, KeyError, RecursionError):
        return None
    return account if isinstance(account, str) else None


def made_again(row: Any, presented: str) -> str | None:
    """`row`'s token as its rotation from `presented` made it, under whichever key made it;
    None if no key makes it (not `presented`'s successor, or made with a key gone since)."""
    grant = [getattr(row, name) for name in CARRIED]
    grant[CARRIED.index("amr")] = list(row.amr or [])
    for key, secret in enumerate(successor_secrets(presented)):
        token = _carrying(secret, grant, key)
        if token_digest(token) == row.token_digest:
            return token
    return None


def _carrying(secret: str, grant: list[Any], key: int = 0) -> str:
    body = f"{secret}.{_b64(json.dumps(grant, separators=(',', ':')).encode())}"
    return f"{body}.{_b64(secret_box().tags(body, 'refresh-grant')[key][:_MAC_BYTES])}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
