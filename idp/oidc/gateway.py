"""Introspection answered by status, for an edge gateway's sub-request (nginx `auth_request`).

RFC 7662 introspection always answers 200 with `{"active": …}`, which nginx cannot read; nginx
`auth_request` only looks at the status. This form checks the bearer token of the request it
is given (the sub-request carries the caller's `Authorization` header) exactly as introspection
would (signature, issuer, expiry, revocation, a still-active account), and answers:

- 200, empty, with `X-Auth-Sub`, `X-Auth-Client-Id`, `X-Auth-Scope` for `auth_request_set`;
- 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1) for no token, a
  malformed, expired or revoked one, or one whose account is disabled or merged away;
- 403 with `error="insufficient_scope"` when `?scope=a b` names a scope the token lacks.

Like userinfo, it tells a token's holder only whether that token works: no client
authentication, since the token is the credential. Two round trips at most: the revocation
check and, for a person's token, the account (docs/DEPLOYMENT.md, the gateway recipe).
"""

from __future__ import annotations

import re

from flask import Response, request

from idp.oidc.tokens import AccessToken, decode_access_token
from idp.scopes import scope_set

SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]{1,128}")  # RFC 6749 §3.3


def check_bearer() -> Response:
    token = _live_token(request.headers.get("Authorization", ""))
    if token is None:
        return _refusal(401, 'Bearer error="invalid_token"')
    required = scope_set(request.args.get("scope"))
    if not all(SCOPE_TOKEN.fullmatch(scope) for scope in required):
        return Response(status=400)  # a gateway misconfiguration, not the caller's fault
    missing = required - scope_set(token.scope)
    if missing:
        scope = " ".join(sorted(missing))
        return _refusal(403, f'Bearer error="insufficient_scope", scope="{scope}"')
    response = Response(status=200)
    response.headers["X-Auth-Sub"] = str(token.claims.get("sub", ""))
    response.headers["X-Auth-Client-Id"] = token.client_id
    response.headers["X-Auth-Scope"] = token.scope
    response.headers["Cache-Control"] = "no-store"
    return response


def _live_token(authorization: str) -> AccessToken | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip() or len(value) > 8192:
        return None
    token = decode_access_token(value.strip())
    if token is None or token.is_expired() or token.is_revoked():
        return None
    is_machine = token.claims.get("sub") == token.client_id  # client_credentials
    if not is_machine and token.get_user() is None:
        return None
    return token


def _refusal(status: int, challenge: str) -> Response:
    response = Response(status=status)
    response.headers["WWW-Authenticate"] = challenge
    response.headers["Cache-Control"] = "no-store"
    return response
