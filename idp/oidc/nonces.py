"""The nonce replay check of the authorization endpoint (OIDC Core §3.1.2.1, §15.5.2): a nonce
already in a live code of the same client is a replayed request, refused with Authlib's
`invalid_request` "Replay attack", sent back to the verified redirect URI.

Authlib checks the nonce while it validates the request (`validate_nonce`), which cost a
`SELECT` of its own ahead of the code's `INSERT`. The authorization view defers it (`defer`):
validation only notes the nonce (`PendingNonce`), and

- a request answered with a code checks it in the code's `INSERT … SELECT … WHERE NOT EXISTS`
  (`insert_code_unless_replayed`): one statement, nothing written for a replayed nonce;
- any other answer (an error, the login or consent page, a step-up, a denial) asks first
  (`replay_error`), so a replayed nonce is refused before anything else, as Authlib would.

Either way the check runs after the same validation steps as Authlib's and answers the same,
and two concurrent requests with one nonce race as they did with the `SELECT` first.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import g
from sqlalchemy import CursorResult, Table, bindparam, exists, insert, select

from idp import statements_alone
from idp.extensions import db
from idp.models_base import utcnow
from idp.oidc.models import AuthorizationCode

DEFER = "idp_nonce_deferred"
PENDING = "idp_nonce_pending"
_codes = cast(Table, AuthorizationCode.__table__)
# The columns of a new code, each bound as `code_<column>` (as `token_statements.INSERT_CODE`).
CODE_COLUMNS = ("code_digest", "client_id", "account_id", "redirect_uri", "scope", "nonce",
                "code_challenge", "code_challenge_method", "auth_time", "amr", "session_id",
                "expires_at")
_NOW = bindparam("code_now", type_=_codes.c.expires_at.type)
# OIDC Core §15.5.2: a live code of the client with this nonce.
_SEEN = (
    select(_codes.c.code_digest)
    .where(_codes.c.client_id == bindparam("client"), _codes.c.nonce == bindparam("nonce"),
           _codes.c.expires_at > _NOW)
    .limit(1)
)


@dataclass(frozen=True)
class PendingNonce:
    """A nonce that validation let through unchecked, and where its refusal would go."""

    client_id: str
    nonce: str
    redirect_uri: str | None
    state: str | None


def defer() -> None:
    """For this request, validation notes the nonce rather than querying it (`note`)."""
    g.setdefault(DEFER, True)


def note(grant: Any) -> bool:
    """Called where Authlib would check the nonce (once the client and its redirect URI are
    verified): True when the check is deferred (and noted for this request), False when the
    caller must check now."""
    request = grant.request
    nonce = request.payload.data.get("nonce")
    if not nonce or not g.get(DEFER):
        return False
    # The URI Authlib binds its refusal to: verified a moment before, so this cannot raise.
    redirect_uri = grant.validate_authorization_redirect_uri(request, request.client)
    g.setdefault(PENDING, PendingNonce(request.payload.client_id, nonce, redirect_uri,
                                       request.payload.state))
    return True


def seen(client_id: str, nonce: str) -> bool:
    """One indexed query (`ix_authorization_code_nonce`)."""
    return db.session.execute(
        _SEEN, {"client": client_id, "nonce": nonce, "code_now": utcnow()}
    ).first() is not None


def replay_error() -> InvalidRequestError | None:
    """Settles a deferred check for an answer without a code: the refusal when the nonce was
    seen, else None (and nothing is pending any more)."""
    pending: PendingNonce | None = g.pop(PENDING, None)
    if pending is None or not seen(pending.client_id, pending.nonce):
        return None
    return refusal(pending)


def refusal(pending: PendingNonce) -> InvalidRequestError:
    """Authlib's own answer to a replayed nonce (`validate_nonce`), bound as its validation
    binds it (redirect URI, state)."""
    error = InvalidRequestError("Replay attack", redirect_uri=pending.redirect_uri)
    error.state = pending.state
    return error


def take_pending(nonce: str | None) -> PendingNonce | None:
    """The deferred check the code's insert is to make, if this request deferred one."""
    pending: PendingNonce | None = g.get(PENDING)
    if pending is None or nonce is None or pending.nonce != nonce:
        return None
    g.pop(PENDING)
    return pending


def insert_code_unless_replayed(values: dict[str, Any], now: datetime) -> bool:
    """Inserts the code (`values`: `token_statements.INSERT_CODE`'s parameters) unless its
    nonce is in a live code of the client: one statement. False when it was (nothing written)."""
    parameters = {**values, "code_now": now}
    statement = _insert_unless_seen()
    if db.engine.dialect.name == "postgresql":
        # One statement: a transaction of its own unless one is open (`idp.statements_alone`).
        return statements_alone.execute_alone(statement, parameters) == 1
    return bool(cast(CursorResult[Any], db.session.execute(statement, parameters)).rowcount == 1)


@functools.cache
def _insert_unless_seen() -> Any:
    # Typed parameters: in a SELECT list PostgreSQL cannot take their types from the columns.
    row = select(*(bindparam(f"code_{name}", type_=_codes.c[name].type)
                   for name in CODE_COLUMNS))
    live = exists().where(_codes.c.client_id == bindparam("code_client_id"),
                          _codes.c.nonce == bindparam("code_nonce"), _codes.c.expires_at > _NOW)
    return insert(_codes).from_select(list(CODE_COLUMNS), row.where(~live))
