"""The refresh_token grant (RFC 6749 §6) as a plain function of the token request: rotation on
every use with reuse detection (RFC 9700 §4.14.2), the scope narrowed and never widened (§6),
a new ID token for an `openid` grant (OIDC Core §12.2).

The whole answer (ID token included) is built, then the rotation written in one atomic step
(`rotate`) that claims the token only if it is still unrotated: a failure on the way (the
database gone while the ID token reads the account) leaves the old token as it was, and of
racing refreshes exactly one rotates it.

What the answer is built from: a refresh token carries its grant (`idp.oidc.refresh_tokens`),
so its refresh is that one statement, without reading the row first; the claim checks the
row's state (unrotated, unrevoked, unexpired). A token that carries none (issued before tokens
did), a carried grant whose claim failed, or whose account holds no tokens now, is read.

A lost answer is rebuilt, not kept. The successor's secret is the presented token keyed
(`refresh_tokens.successor_secrets`), and the answer's tokens take their issue time and access
`jti` from the successor's row. So the same client presenting the rotated token again within
IDP_REFRESH_REUSE_GRACE_SECONDS, while the successor is unused, gets the same answer (its
response was lost after the commit; RS256 signs the same claims to the same bytes), and no
token is stored. Any other use of a rotated token revokes the family.

Client authentication is Authlib's (every method the token endpoint accepts); the rest is
this module, without Authlib's grant machinery: a refresh is the token endpoint's most
frequent write (bench/README.md)."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oidc.core.grants.util import is_openid_scope
from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.models_base import utcnow
from idp.observability import metrics
from idp.oidc import grants, refresh_tokens, releases
from idp.oidc import token_statements as statements
from idp.oidc.context import auth_context
from idp.oidc.models import RefreshToken, token_digest

GRANT_TYPE = "refresh_token"
_ID_TOKENS = grants.IdTokenIssuer()


def refresh(oauth_request: Any,
            client: Any = None) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """The answer to a `grant_type=refresh_token` request (an Authlib `OAuth2Request`, for its
    client authentication — or, with the `client` already authenticated, any request with a
    `form`); raises Authlib's `OAuth2Error`s, answered by the caller."""
    if client is None:
        server = current_app.extensions["idp_authorization_server"]
        client = server.authenticate_client(oauth_request, grants.CLIENT_AUTH_METHODS)
    if not client.check_grant_type(GRANT_TYPE):
        raise UnauthorizedClientError(
            f"The client is not authorized to use 'grant_type={GRANT_TYPE}'")
    form = oauth_request.form
    presented = form.get("refresh_token")
    if presented is None:
        raise InvalidRequestError("Missing 'refresh_token' in request.")
    asked = form.get("scope")
    carried = refresh_tokens.carried_grant(presented)
    if carried is not None and carried.client_id == client.client_id:
        try:
            token = _rotated(carried, presented, client, asked)
        except InvalidGrantError:
            token = None  # the account holds no tokens now: answered from the row
        if token is not None:
            return 200, token, grants.TOKEN_HEADERS
    # The row, read: a token that carries no grant (issued before tokens did, or under a key
    # dropped since), or one whose claim failed (used, revoked, expired).
    found = statements.first_alone(statements.READ_REFRESH, digest=token_digest(presented))
    row: Any = SimpleNamespace(**found) if found is not None else None
    repeated = None
    if row is not None and not _claimable(row):
        row, repeated = _not_claimable(presented, client)
    if row is None or row.client_id != client.client_id:
        raise InvalidGrantError()
    _check_scope(row, asked)
    if repeated is not None:
        return 200, repeated, grants.TOKEN_HEADERS
    token = _rotated(row, presented, client, asked)
    if token is None:
        # Claimed (or revoked) by someone else since it was read: the racer's answer again
        # if it may be given (its lost response), else the family revoked.
        _, repeated = _not_claimable(presented, client)
        if repeated is None:
            raise InvalidGrantError()
        return 200, repeated, grants.TOKEN_HEADERS
    return 200, token, grants.TOKEN_HEADERS


def _check_scope(row: Any, asked: str | None) -> None:
    if asked and not set(scope_to_list(row.scope or "")).issuperset(scope_to_list(asked)):
        raise InvalidScopeError()  # RFC 6749 §6: never more than originally granted


def _rotated(row: Any, presented: str, client: Any, asked: str | None) -> dict[str, Any] | None:
    """The answer of `row`'s grant, issued and rotated in; None when the claim found the token
    no longer claimable as `row` describes it (nothing was written then)."""
    _check_scope(row, asked)
    scope = client.get_allowed_scope(asked or row.scope)
    account = grants.token_holder(row.account_id, scope, client)
    if account is None:  # RFC 6749 §5.2
        raise InvalidGrantError("The account of this refresh token cannot be issued tokens.")
    _authenticated_as(row)
    now, jti = utcnow(), secrets.token_urlsafe(16)
    ttl = int(current_app.config["IDP_ACCESS_TOKEN_TTL"])
    successor, values = refresh_tokens.issue(
        refresh_tokens.successor_secrets(presented)[0], row.family, client.client_id,
        row.account_id, scope, {"jti": jti, "exp": int(now.timestamp()) + ttl}, now,
        predecessor=row.token_digest)
    token = _issue(client, account, scope, successor, int(now.timestamp()), jti)
    if not rotate(row, token, client, now, values):
        return None
    metrics.count_token_issued(GRANT_TYPE)
    return token


def _authenticated_as(row: Any) -> None:
    """The successor carries the row's authentication (`auth_time`, `amr`, `sid`)."""
    context = auth_context()
    context.auth_time = row.auth_time
    context.amr = list(row.amr or [])
    context.session_id = row.session_id


def _issue(client: Any, account: Any, scope: str, refresh_token: str, issued_at: int,
           jti: str) -> dict[str, Any]:
    """RFC 6749 §5.1's answer, in the order Authlib's bearer generator gives it, and the ID
    token of an `openid` grant (OIDC Core §12.2, no nonce). The same arguments (and claims)
    give the same answer. `scope`: the client's allowed part of what was asked."""
    token: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": grants.ACCESS_TOKENS.access_token_generator(
            client, GRANT_TYPE, account, scope, issued_at=issued_at, jti=jti),
        "expires_in": int(current_app.config["IDP_ACCESS_TOKEN_TTL"]),
        "refresh_token": refresh_token,
    }
    if scope:
        token["scope"] = scope
        if is_openid_scope(scope):
            token["id_token"] = _ID_TOKENS.encode_id_token(
                token, SimpleNamespace(client=client, user=account, authorization_code=None),
                issued_at)
    return token


def _claimable(row: Any) -> bool:
    return row.rotated_at is None and row.revoked_at is None and row.expires_at > utcnow()


def rotate(row: Any, token: dict[str, Any], client: Any, now: datetime,
           successor: dict[str, Any]) -> bool:
    """The rotation of `row` to the answer `token` (issued `now`; its refresh token's row
    `successor`, `refresh_tokens.issue`'s), atomically (`token_statements.rotation`): the claim
    — of racing refreshes exactly one claims the token — the successor inserted and the
    released claims recorded (unless this process recorded them lately,
    `releases.recorded_lately`). False when the token was no longer claimable: then nothing was
    written."""
    release = releases.release_values(row.account_id, client.client_id, token.get("scope"), now)
    values = {"rotate_digest": row.token_digest, "rotate_now": now, "rotate_at": now,
              **successor, **release}
    return statements.write_claiming(statements.rotation, values, release)


def _not_claimable(
    presented: str, client: Any
) -> tuple[RefreshToken | None, dict[str, Any] | None]:
    """A token that could not be claimed: unknown, expired, revoked — or rotated, and then
    either its answer given again (see the module) or, on any other use, its whole family
    revoked (someone holds a copy)."""
    row = db.session.get(RefreshToken, token_digest(presented))
    if row is not None and row.rotated_at is not None:
        answer = repeated_answer(row, presented, client)
        if answer is not None:
            db.session.commit()  # nothing written
            return row, answer
        grants.revoke_family(row.family)
    db.session.commit()
    return None, None


def repeated_answer(rotated: RefreshToken, presented: str, client: Any) -> dict[str, Any] | None:
    """The answer `rotated`'s rotation gave, rebuilt, if it may be given again (see the
    module): within the window, to the same client, while the successor is unused."""
    grace = timedelta(seconds=int(current_app.config["IDP_REFRESH_REUSE_GRACE_SECONDS"]))
    if (
        rotated.revoked_at is not None
        or rotated.rotated_at is None
        or utcnow() - rotated.rotated_at > grace
        or rotated.client_id != client.client_id
    ):
        return None
    successor = db.session.scalars(select(RefreshToken).where(
        RefreshToken.family == rotated.family,
        RefreshToken.predecessor_digest == rotated.token_digest,
    )).first()
    if (successor is None or successor.rotated_at is not None or successor.is_revoked()
            or successor.is_expired() or successor.access_jti is None):
        return None  # the successor was used (or died): the old token's holder is not alone
    token = refresh_tokens.made_again(successor, presented)
    account = grants.token_holder(successor.account_id, successor.scope, client)
    if token is None or account is None:
        return None
    _authenticated_as(successor)
    issued_at = int(successor.issued_at.timestamp())
    answer = _issue(client, account, successor.scope, token, issued_at, successor.access_jti)
    expires = issued_at + int(current_app.config["IDP_ACCESS_TOKEN_TTL"])
    answer["expires_in"] = max(0, expires - int(time.time()))
    return answer
