"""The token endpoint (RFC 6749 §3.2, §5) as a plain function of a `HotRequest`.

The per-client rate limit first (`rate_limit.py`; its round trip also reads the cache versions
of the account a refresh token or a sealed code names), then the grant: a refresh and a
client_credentials request are plain functions (`idp.oidc.refresh_grant`,
`idp.oidc.client_credentials`); for the others Authlib's server finds the grant registered
for the `grant_type` (those of `idp.oidc.grants`, and those another domain plugged in, such as
the WeChat token exchange), which authenticates the client and answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import current_app

from idp.oidc import client_credentials, refresh_grant, refresh_tokens, sealed_codes
from idp.oidc.hot_paths.authlib_bridge import HotOAuth2Request, oauth_error_answer
from idp.oidc.hot_paths.basic_client import basic_client
from idp.oidc.hot_paths.dispatcher import Answer
from idp.oidc.hot_paths.http import HotRequest, json_body
from idp.oidc.hot_paths.rate_limit import check_token_rate


def token(request: HotRequest) -> Answer:
    check_token_rate(request, _account_named(request))
    server = current_app.extensions["idp_authorization_server"]
    try:
        grant_type = request.form.get("grant_type")
        plain = _plain_grant(grant_type)
        if plain is not None:
            # A client that authenticated with Basic needs no Authlib request; any other
            # (or a failure) is authenticated through one, which may refuse the transport.
            client = basic_client(request)
            status, body, headers = (
                plain(HotOAuth2Request(request, multi=True)) if client is None
                else plain(request, client=client))
        else:
            oauth_request = HotOAuth2Request(request, multi=True)  # may refuse the transport
            grant = server.get_token_grant(oauth_request)
            grant.validate_token_request()
            status, body, headers = grant.create_token_response()
    except OAuth2Error as error:
        return oauth_error_answer(request, error, server.get_error_uri(None, error))
    return status, list(headers), json_body(body)


def _plain_grant(grant_type: str | None) -> Callable[..., Any] | None:
    """The grants that are plain functions of the request: of an Authlib request, or of the
    hot request with the client `basic_client` authenticated (`client=`)."""
    if grant_type == refresh_grant.GRANT_TYPE:
        return refresh_grant.refresh
    if grant_type == client_credentials.GRANT_TYPE:
        return client_credentials.client_credentials
    return None


def _account_named(request: HotRequest) -> str | None:
    """Whose cache versions the grant reads next (`idp.caching.versions_for`), so that the
    rate limit's round trip reads them too: the account a refresh token or a sealed code names
    (the grant checks the token or code itself); "" for the grants another domain plugged in
    (the WeChat exchange reads the versions every process shares before it knows the account:
    `idp.wechat_login.upstream`); None for client_credentials, which reads none."""
    form = request.form
    grant_type = form.get("grant_type")
    if grant_type == refresh_grant.GRANT_TYPE:
        return refresh_tokens.account_named(form.get("refresh_token") or "")
    if grant_type == "authorization_code":
        carried = sealed_codes.unseal(form.get("code") or "")
        return None if carried is None else carried["account_id"]
    if grant_type == client_credentials.GRANT_TYPE:
        return None
    return ""
