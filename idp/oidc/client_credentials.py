"""The client_credentials grant (RFC 6749 §4.4) as a plain function of the token request: a
confidential client, authenticated (Authlib's client authentication, every method but `none`),
gets an access token for itself (`sub` is its client_id, RFC 9068 §2.2) within the scopes it
is registered for, without a refresh token (§4.4.3). Without Authlib's grant machinery: it is
the token endpoint's most frequent answer (bench/README.md)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from authlib.oauth2.rfc6749 import UnauthorizedClientError
from flask import current_app

from idp.oidc import grants

GRANT_TYPE = "client_credentials"


def client_credentials(
    oauth_request: Any, client: Any = None
) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """The answer to a `grant_type=client_credentials` request (an Authlib `OAuth2Request`, for
    its client authentication — or, with the confidential `client` already authenticated, any
    request with a `form`); raises Authlib's `OAuth2Error`s, answered by the caller."""
    server = current_app.extensions["idp_authorization_server"]
    if client is None:
        client = server.authenticate_client(oauth_request, grants.CONFIDENTIAL_AUTH_METHODS)
    if not client.check_grant_type(GRANT_TYPE):
        raise UnauthorizedClientError(
            f"The client is not authorized to use 'grant_type={GRANT_TYPE}'")
    asked = oauth_request.form.get("scope")
    server.validate_requested_scope(asked)  # RFC 6749 §3.3: an unknown scope is invalid_scope
    scope = client.get_allowed_scope(asked)
    token: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": grants.ACCESS_TOKENS.access_token_generator(
            client, GRANT_TYPE, None, scope),
        "expires_in": int(current_app.config["IDP_ACCESS_TOKEN_TTL"]),
    }
    if scope:
        token["scope"] = scope
    server.save_token(token, SimpleNamespace(
        client=client, user=None, authorization_code=None,
        payload=SimpleNamespace(grant_type=GRANT_TYPE)))
    return 200, token, grants.TOKEN_HEADERS
