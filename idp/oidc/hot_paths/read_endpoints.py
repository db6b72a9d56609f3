"""JWKS (RFC 7517), discovery (OIDC Discovery §4, RFC 8414 §3), userinfo (OIDC Core §5.3,
RFC 6750) and introspection (RFC 7662) as plain functions of a `HotRequest`.

Round trips on a warm process: JWKS and discovery none; userinfo one Redis `MGET` (the
versions of `idp.caching`: token state and claims both answered from this process's cache);
introspection the same for the token, the client from the per-process client cache."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import current_app

from idp.identity.claims import cached_user_claims
from idp.oidc.context import issuer, keyring
from idp.oidc.discovery import provider_metadata
from idp.oidc.hot_paths.authlib_bridge import HotOAuth2Request, oauth_error_answer
from idp.oidc.hot_paths.dispatcher import Answer, Routes
from idp.oidc.hot_paths.http import HotError, HotRequest, json_body
from idp.oidc.tokens import decode_access_token

JSON = ("Content-Type", "application/json")
NO_STORE = [JSON, ("Cache-Control", "no-store"), ("Pragma", "no-cache")]
INVALID_TOKEN = ("The access token provided is expired, revoked, malformed, or invalid for "
                 "other reasons.")


def jwks(request: HotRequest) -> Answer:
    max_age = int(current_app.config["IDP_JWKS_MAX_AGE"])
    # A new key signs only once every copy of this answer has expired (idp/oidc/keys.py).
    headers = [JSON, ("Cache-Control", f"public, max-age={max_age}")]
    return 200, headers, keyring().public_jwks_body()


def discovery(request: HotRequest) -> Answer:
    grant_types = current_app.extensions.get("idp_extra_grant_types", [])
    body = json_body(provider_metadata(issuer(), grant_types))
    return 200, [JSON, ("Cache-Control", "public, max-age=300")], body


def userinfo(request: HotRequest) -> Answer:
    """OIDC Core §5.3.1: the bearer token in the Authorization header (RFC 6750 §2.1), with the
    `openid` scope; 401 with a Bearer challenge otherwise (RFC 6750 §3)."""
    token = decode_access_token(bearer_token(request))
    if token is None or token.is_expired() or token.is_client_token() or token.is_revoked():
        raise _invalid_token()
    if "openid" not in token.scope.split():
        raise HotError(403, "insufficient_scope",
                       "The access token was not granted the 'openid' scope.",
                       [("WWW-Authenticate", 'Bearer error="insufficient_scope", scope="openid"')])
    client = token.get_client()  # per-process cache: no query
    claims = None
    if client is not None:
        claims = cached_user_claims(token.claims["sub"], token.jti, token.scope,
                                    client.wechat_appid)
    if claims is None:
        raise _invalid_token()  # a client deleted since, or an account that died meanwhile
    return 200, list(NO_STORE), json_body(claims)


def bearer_token(request: HotRequest) -> str:
    authorization = request.header("HTTP_AUTHORIZATION")
    if not authorization:
        # RFC 6750 §3.1: no credentials at all get a challenge without an error code.
        raise HotError(401, "missing_authorization", "Missing 'Authorization' in headers.",
                       [("WWW-Authenticate", "Bearer")])
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HotError(401, "unsupported_token_type",
                       "The access token must be sent as 'Authorization: Bearer <token>'.",
                       [("WWW-Authenticate", "Bearer")])
    return token


def _invalid_token() -> HotError:
    challenge = f'Bearer error="invalid_token", error_description="{INVALID_TOKEN}"'
    return HotError(401, "invalid_token", INVALID_TOKEN, [("WWW-Authenticate", challenge)])


def introspection(request: HotRequest) -> Answer:
    """RFC 7662 §2: Authlib's endpoint (client authentication, permission, payload:
    `idp.oidc.endpoints.Introspection`) on a request parsed here."""
    return _authlib_endpoint(request, "introspection")


def _authlib_endpoint(request: HotRequest, name: str) -> Answer:
    server = current_app.extensions["idp_authorization_server"]
    try:
        oauth_request = HotOAuth2Request(request)  # may refuse the transport (RFC 6749 §3.1)
        status, body, headers = server._endpoints[name][0](oauth_request)
    except OAuth2Error as error:
        return oauth_error_answer(request, error, server.get_error_uri(None, error))
    return status, list(headers), json_body(body)


ROUTES: Routes = {
    "/oauth/jwks": ("oidc.jwks", {"GET": jwks}),
    "/.well-known/openid-configuration": ("oidc.discovery", {"GET": discovery}),
    "/.well-known/oauth-authorization-server": ("oidc.discovery", {"GET": discovery}),
    "/oauth/userinfo": ("oidc.userinfo", {"GET": userinfo, "POST": userinfo}),
    "/oauth/introspect": ("oidc.introspect", {"POST": introspection}),
}


