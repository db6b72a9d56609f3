"""The refresh_token grant (RFC 6749 §6) as a plain function of the token request: rotation on
every use with reuse detection (RFC 9700 §4.14.2), the scope narrowed and never widened (§6),
a new ID token for an `openid` grant (OIDC Core §12.2).

The whole answer (ID token included) is built before the rotation commits: a failure on the way
(the database gone while the ID token reads the account) leaves the old token as it was. The
answer is kept on the rotated row, encrypted: the same client presenting that token again
within IDP_REFRESH_REUSE_GRACE_SECONDS, while the successor is unused, gets the same answer
(its response was lost after the commit). Any other use of a rotated token revokes the family.

Client authentication is Authlib's (every method the token endpoint accepts); the rest is
this module, without Authlib's grant machinery: a refresh is the token endpoint's most
frequent write (bench/README.md)."""

from __future__ import annotations

import json
import random
import secrets
import time
from datetime import timedelta
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
from flask import current_app, g
from sqlalchemy.exc import OperationalError

from idp.crypto import DecryptionError
from idp.extensions import db, stage_write
from idp.models_base import utcnow
from idp.oidc import grants
from idp.oidc import token_statements as statements
from idp.oidc.context import auth_context, secret_box
from idp.oidc.models import RefreshToken, token_digest
from idp.oidc.tokens import unverified_claims

GRANT_TYPE = "refresh_token"
SQLITE_CLAIM_ATTEMPTS = 5
_ID_TOKENS = grants.IdTokenIssuer()


def refresh(oauth_request: Any) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """The answer to a `grant_type=refresh_token` request (an Authlib `OAuth2Request`, for its
    client authentication); raises Authlib's `OAuth2Error`s, answered by the caller."""
    server = current_app.extensions["idp_authorization_server"]
    client = server.authenticate_client(oauth_request, grants.CLIENT_AUTH_METHODS)
    if not client.check_grant_type(GRANT_TYPE):
        raise UnauthorizedClientError(
            f"The client is not authorized to use 'grant_type={GRANT_TYPE}'")
    form = oauth_request.form
    presented = form.get("refresh_token")
    if presented is None:
        raise InvalidRequestError("Missing 'refresh_token' in request.")
    digest = token_digest(presented)
    row = claim(digest)
    repeated = None
    if row is None:
        row, repeated = _not_claimable(digest, client)
    if row is None or row.client_id != client.client_id:
        raise InvalidGrantError()
    asked = form.get("scope")
    if asked and not set(scope_to_list(row.scope or "")).issuperset(scope_to_list(asked)):
        raise InvalidScopeError()  # RFC 6749 §6: never more than originally granted
    if repeated is not None:
        return 200, repeated, grants.TOKEN_HEADERS

    scope = asked or row.scope
    account = grants.token_holder(row.account_id, scope, client)
    if account is None:  # RFC 6749 §5.2
        raise InvalidGrantError("The account of this refresh token cannot be issued tokens.")
    context = auth_context()
    context.auth_time = row.auth_time
    context.amr = list(row.amr or [])
    context.session_id = row.session_id
    token = _issue(client, account, scope)
    g.refresh_family = row.family
    request = SimpleNamespace(client=client, user=account, authorization_code=None,
                              payload=SimpleNamespace(grant_type=GRANT_TYPE))
    server.stage_token(token, request)
    remember_answer(row, token)
    db.session.commit()
    return 200, token, grants.TOKEN_HEADERS


def _issue(client: Any, account: Any, scope: str) -> dict[str, Any]:
    """RFC 6749 §5.1's answer, in the order Authlib's bearer generator gives it, and the ID
    token of an `openid` grant (OIDC Core §12.2, no nonce)."""
    scope = client.get_allowed_scope(scope)
    token: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": grants.ACCESS_TOKENS.access_token_generator(
            client, GRANT_TYPE, account, scope),
        "expires_in": int(current_app.config["IDP_ACCESS_TOKEN_TTL"]),
        "refresh_token": secrets.token_urlsafe(36),
    }
    if scope:
        token["scope"] = scope
        if is_openid_scope(scope):
            token["id_token"] = _ID_TOKENS.encode_id_token(
                token, SimpleNamespace(client=client, user=account, authorization_code=None))
    return token


def claim(digest: str) -> RefreshToken | None:
    """Marks the token rotated and reads it in one statement (`UPDATE … RETURNING`),
    atomically: of racing refreshes exactly one claims it. The claimed row comes back
    detached from the session: what is written next is written by statement.

    SQLite: the claim starts a transaction of its own (so that waiting for a racer's write
    lock ends on a fresh snapshot), and a racer that still meets "database is locked" tries
    again, as `idp.identity.transactions` does."""
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    for attempt in range(1, SQLITE_CLAIM_ATTEMPTS + 1):
        if sqlite:
            db.session.commit()  # nothing is pending yet: only the client was read
        now = utcnow()
        try:
            claimed = statements.first(
                statements.CLAIM_REFRESH, digest=digest, now=now, rotated=now
            )
        except OperationalError:
            db.session.rollback()
            if not sqlite or attempt == SQLITE_CLAIM_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.005, 0.03) * attempt)  # noqa: S311 - not security
            continue
        return RefreshToken(**claimed) if claimed is not None else None
    raise AssertionError("unreachable")  # pragma: no cover


def _not_claimable(digest: str, client: Any) -> tuple[RefreshToken | None, dict[str, Any] | None]:
    """A token that could not be claimed: unknown, expired, revoked — or rotated, and then
    either given its kept answer again (see the module) or, on any other use, its whole family
    revoked (someone holds a copy)."""
    row = db.session.get(RefreshToken, digest)
    if row is not None and row.rotated_at is not None:
        answer = repeated_answer(row, client)
        if answer is not None:
            db.session.commit()  # nothing written: end the claim's transaction (its lock)
            return row, answer
        grants.revoke_family(row.family)
    db.session.commit()
    return None, None


def repeated_answer(rotated: RefreshToken, client: Any) -> dict[str, Any] | None:
    """The answer `rotated`'s rotation gave, if it may be given again (see the module)."""
    grace = timedelta(seconds=int(current_app.config["IDP_REFRESH_REUSE_GRACE_SECONDS"]))
    if (
        rotated.successor_response_encrypted is None
        or rotated.revoked_at is not None
        or rotated.rotated_at is None
        or utcnow() - rotated.rotated_at > grace
        or rotated.client_id != client.client_id
    ):
        return None
    try:
        answer: dict[str, Any] = json.loads(
            secret_box().decrypt(
                rotated.successor_response_encrypted, context=_answer_context(rotated)
            )
        )
    except (DecryptionError, ValueError):
        return None
    successor = db.session.get(RefreshToken, token_digest(answer["refresh_token"]))
    if successor is None or successor.is_revoked() or successor.is_expired():
        return None  # the successor was used (or died): the old token's holder is not alone
    expires = int(unverified_claims(answer["access_token"])["exp"])
    answer["expires_in"] = max(0, expires - int(time.time()))
    return answer


def remember_answer(rotated: RefreshToken, token: dict[str, Any]) -> None:
    """One statement, sent with the successor's `INSERT` at the commit: the answer on the
    rotated row; the family's older answers dropped (their successors are used: they cannot
    be given again)."""
    encrypted = secret_box().encrypt(json.dumps(token), context=_answer_context(rotated))
    stage_write((statements.REMEMBER_ANSWER, {"answer_family": rotated.family,
                                              "answer_digest": rotated.token_digest,
                                              "answer": encrypted}))


def _answer_context(rotated: RefreshToken) -> str:
    return f"refresh-answer:{rotated.token_digest}"
