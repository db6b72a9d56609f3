"""The token endpoint's most common client authentication, `client_secret_basic` (RFC 6749
§2.3.1), when it succeeds, without building Authlib's request for it: Authlib's own steps
(`authenticate_client_secret_basic`, then the client's registered method checked), on the
parsed request. Anything else — another method, a failure of any kind, an insecure transport —
is None, and Authlib's authentication decides as before, with its error and its challenge
(`idp.oidc.server.IdentityProviderServer.authenticate_client`). Saves ~50 µs of a refresh or a
client_credentials request (bench/README.md)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote

from idp.oidc.client_cache import cached_client
from idp.oidc.hot_paths.http import HotRequest
from idp.oidc.transport import secure_origin

METHOD = "client_secret_basic"


def basic_client(request: HotRequest) -> Any | None:
    """The client whose Basic credentials this request carries and that authenticates with
    them, or None (Authlib's authentication then decides)."""
    header = request.header("HTTP_AUTHORIZATION")
    if not header or " " not in header:
        return None
    scheme, credentials = header.split(None, 1)
    if scheme.lower() != "basic":
        return None
    url = request.url
    if not secure_origin(url[: len(url) - len(request.path)]):
        return None  # Authlib refuses the transport (RFC 6749 §3.1)
    try:
        client_id, colon, secret = base64.b64decode(credentials).decode().partition(":")
    except (binascii.Error, ValueError):
        return None
    if not colon:
        return None
    client_id, secret = unquote(client_id), unquote(secret)
    if not client_id or not secret:
        return None
    client = cached_client(client_id)
    if (client is None or not client.check_client_secret(secret)
            or not client.check_endpoint_auth_method(METHOD, "token")):
        return None
    return client
