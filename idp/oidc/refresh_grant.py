"""The refresh_token grant (RFC 6749 §6) as a plain function of the token request: rotation on
every use with reuse detection (RFC 9700 §4.14.2), the scope narrowed and never widened (§6),
a new ID token for an `openid` grant (OIDC Core §12.2).

The token's row is read, the whole answer (ID token included) built, then the rotation
written in one atomic step (`rotate`) that claims the token only if it is still unrotated: a
failure on the way (the database gone while the ID token reads the account) leaves the old
token as it was, and of racing refreshes exactly one rotates it. The answer is kept on the
rotated row, encrypted: the same client presenting that token again within
IDP_REFRESH_REUSE_GRACE_SECONDS, while the successor is unused, gets the same answer (its
response was lost after the commit). Any other use of a rotated token revokes the family.

Client authentication is Authlib's (every method the token endpoint accepts); the rest is
this module, without Authlib's grant machinery: a refresh is the token endpoint's most
frequent write (bench/README.md)."""

from __future__ import annotations

import json
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
from flask import current_app

from idp.crypto import DecryptionError
from idp.extensions import db
from idp.models_base import utcnow
from idp.observability import metrics
from idp.oidc import grants
from idp.oidc import token_statements as statements
from idp.oidc.context import auth_context, secret_box
from idp.oidc.models import RefreshToken, token_digest
from idp.oidc.releases import release_values
from idp.oidc.tokens import unverified_claims

GRANT_TYPE = "refresh_token"
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
    found = statements.first_alone(statements.READ_REFRESH, digest=digest)
    row: Any = SimpleNamespace(**found) if found is not None else None
    repeated = None
    if row is not None and not _claimable(row):
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
    if not rotate(row, token, client):
        # Claimed (or revoked) by someone else since it was read: the racer's answer again
        # if it may be given (its lost response), else the family revoked.
        _, repeated = _not_claimable(digest, client)
        if repeated is None:
            raise InvalidGrantError()
        return 200, repeated, grants.TOKEN_HEADERS
    metrics.count_token_issued(GRANT_TYPE)
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


def _claimable(row: Any) -> bool:
    return row.rotated_at is None and row.revoked_at is None and row.expires_at > utcnow()


def rotate(row: Any, token: dict[str, Any], client: Any) -> bool:
    """The rotation of `row` to the answer `token`, atomically (`token_statements.rotation`):
    the claim — of racing refreshes exactly one claims the token — with the answer kept on the
    rotated row (encrypted, see the module), its predecessor's kept answer dropped, the successor
    inserted and the released claims recorded. False when the token was no longer claimable:
    then nothing was written.

    The successor carries the row's authentication (`auth_time`, `amr`, `sid`), set as the
    request's context by `refresh`."""
    now = utcnow()
    access = unverified_claims(token["access_token"])
    values = {
        "rotate_digest": row.token_digest, "rotate_predecessor": row.predecessor_digest,
        "rotate_now": now, "rotate_at": now,
        "rotate_answer": secret_box().encrypt(json.dumps(token), context=_answer_context(row)),
        **grants.refresh_values(token["refresh_token"], row.family, client.client_id,
                                row.account_id, token.get("scope", ""), access, now,
                                predecessor=row.token_digest),
        **release_values(row.account_id, client.client_id, token.get("scope"), now),
    }
    return statements.write_claiming(statements.rotation, values)


def _not_claimable(digest: str, client: Any) -> tuple[RefreshToken | None, dict[str, Any] | None]:
    """A token that could not be claimed: unknown, expired, revoked — or rotated, and then
    either given its kept answer again (see the module) or, on any other use, its whole family
    revoked (someone holds a copy)."""
    row = db.session.get(RefreshToken, digest)
    if row is not None and row.rotated_at is not None:
        answer = repeated_answer(row, client)
        if answer is not None:
            db.session.commit()  # nothing written
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


def _answer_context(rotated: Any) -> str:
    return f"refresh-answer:{rotated.token_digest}"
