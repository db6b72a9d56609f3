"""Authorization codes that carry what their redemption reads (RFC 6749 §4.1.2).

A code is its grant — client, account, redirect URI, scope, nonce, PKCE challenge, how and
when the user signed in, its expiry — sealed with the secret box (AES-256-GCM under
IDP_ENCRYPTION_KEY, bound to this use), so that its redemption builds the answer without
reading the code's row first. The row is still written at the authorization endpoint and is
still the truth of the code's state: the redemption's claim (`token_statements.redemption`)
takes it only while unused and unexpired, and a code whose claim fails is a replay, answered as
one (`grants.AuthorizationCodeGrant`). Sealed, the code tells the browser and the logs it
passes through nothing (its nonce, its session), and no one but the IdP can make one.

A grant too long to seal into a code of at most MAX_LENGTH characters (a very long nonce or
redirect URI) gets a random code, whose row is read at redemption."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import g

from idp.crypto import DecryptionError
from idp.oidc.context import secret_box

CONTEXT = "authorization-code"
_OPENED = "idp_opened_code"
MAX_LENGTH = 1024
# The row's columns a code carries, in order (`expires_at` as epoch seconds).
CARRIED = ("client_id", "account_id", "redirect_uri", "scope", "nonce", "code_challenge",
           "code_challenge_method", "auth_time", "amr", "session_id", "expires_at")


def seal(values: dict[str, Any]) -> str | None:
    """The code carrying `values` (the row's, by column name); None when it would be longer
    than MAX_LENGTH."""
    grant = [values[name] for name in CARRIED]
    grant[-1] = int(values["expires_at"].timestamp())
    sealed = secret_box().encrypt(json.dumps(grant, separators=(",", ":")), context=CONTEXT)
    code = sealed.rstrip("=")
    return code if len(code) <= MAX_LENGTH else None


def unseal(code: str) -> dict[str, Any] | None:
    """The row's values a code carries (by column name), or None: not a sealed code, or not
    one this IdP made. Opened once per request (the token endpoint's rate limit reads the
    account first: `hot_paths.token_endpoint`)."""
    opened: tuple[str, dict[str, Any] | None] | None = g.get(_OPENED)
    if opened is None or opened[0] != code:
        opened = (code, _unseal(code))
        setattr(g, _OPENED, opened)
    return None if opened[1] is None else dict(opened[1])


def _unseal(code: str) -> dict[str, Any] | None:
    key_id, dot, body = code.partition(".")
    if not dot or len(code) > MAX_LENGTH or not key_id.isalnum():
        return None
    try:
        grant = json.loads(secret_box().decrypt(f"{code}{'=' * (-len(body) % 4)}",
                                                context=CONTEXT))
    except (DecryptionError, ValueError):
        return None
    if not isinstance(grant, list) or len(grant) != len(CARRIED):
        return None
    values = dict(zip(CARRIED, grant, strict=True))
    values["expires_at"] = datetime.fromtimestamp(values["expires_at"], UTC)
    return values

