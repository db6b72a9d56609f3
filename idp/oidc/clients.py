"""Registering relying parties."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import urlsplit

from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from idp.crypto import digest
from idp.extensions import db
from idp.identity.account_events import ACCOUNT_EVENT_TYPES
from idp.identity.catalogue import registrable_scopes
from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.oidc.models import Client
from idp.scopes import management_scopes_misplaced
from idp.security.outbound import OutboundRefused, check_uri_at_registration, parse_networks

KNOWN_GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", TOKEN_EXCHANGE)
# How a client authenticates at the token, revocation and introspection endpoints (OIDC
# Registration §2 `token_endpoint_auth_method`); it is accepted there by that method only.
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
AUTH_METHODS = (*SECRET_AUTH_METHODS, "private_key_jwt", "none")


class ClientSpecError(ValueError):
    pass


def validate_redirect_uri(uri: str) -> str:
    """RFC 9700 §2.1: absolute, no fragment; http only on loopback; custom schemes allowed for
    native apps."""
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or "*" in uri:
        raise ClientSpecError(f"redirect URI must be absolute, without fragment: {uri!r}")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ClientSpecError(f"http redirect URIs are for loopback only: {uri!r}")
    if parts.scheme in ("javascript", "data", "file"):
        raise ClientSpecError(f"scheme not allowed: {uri!r}")
    return uri


def validate_server_uri(uri: str) -> str:
    """Events and back-channel logout URIs: the redirect URI rules, http(s) only, and never an
    address of the IdP's own network unless the operator allows it (issue 10 item 8)."""
    validate_redirect_uri(uri)
    if not uri.startswith(("https://", "http://")):
        raise ClientSpecError(f"must be an http(s) URL: {uri!r}")
    allowed = parse_networks(current_app.config.get("IDP_OUTBOUND_ALLOWED_NETWORKS"))
    try:
        check_uri_at_registration(uri, allowed)
    except OutboundRefused as refusal:
        raise ClientSpecError(
            f"{uri!r} points at a non-public address ({refusal}); an operator may allow its "
            "network in IDP_OUTBOUND_ALLOWED_NETWORKS"
        ) from refusal
    return uri


def validate_event_types(event_types: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(event_types))
    unknown = set(chosen) - set(ACCOUNT_EVENT_TYPES)
    if unknown:
        raise ClientSpecError(f"unknown event types: {', '.join(sorted(unknown))}")
    return chosen


def create_client(
    *,
    name: str,
    public: bool = False,
    redirect_uris: tuple[str, ...] | list[str] = (),
    grant_types: tuple[str, ...] | list[str] = (),
    scope: str | None = None,
    wechat_appid: str | None = None,
    post_logout_redirect_uris: tuple[str, ...] | list[str] = (),
    backchannel_logout_uri: str | None = None,
    events_uri: str | None = None,
    event_types: Iterable[str] | None = None,
    first_party: bool = False,
    id_token_alg: str = "RS256",
    jwks: dict[str, Any] | None = None,
    token_endpoint_auth_method: str | None = None,
    require_mfa: bool = False,
) -> tuple[Client, str | None]:
    """Returns the client and its secret (shown once; only a digest is kept). A client with a
    secret method gets a secret; `private_key_jwt` and `none` get none."""
    auth_method = choose_auth_method(token_endpoint_auth_method, public, jwks)
    public = auth_method == "none"
    grants = list(grant_types) or (
        ["authorization_code", "refresh_token"] if redirect_uris else ["client_credentials"]
    )
    unknown = set(grants) - set(KNOWN_GRANT_TYPES)
    if unknown:
        raise ClientSpecError(f"unknown grant types: {', '.join(sorted(unknown))}")
    if "authorization_code" in grants and not redirect_uris:
        raise ClientSpecError("authorization_code needs at least one --redirect-uri")
    if public and "client_credentials" in grants:
        raise ClientSpecError("a public client cannot use client_credentials")
    if TOKEN_EXCHANGE in grants and not (public and wechat_appid):
        raise ClientSpecError("the mini-program grant needs --public and --wechat-appid")
    scopes = (scope or "openid profile phone email wechat offline_access").split()
    unknown_scopes = set(scopes) - set(registrable_scopes())
    if unknown_scopes:
        raise ClientSpecError(f"unknown scopes: {' '.join(sorted(unknown_scopes))}")
    check_management_scopes(scopes, grants)
    for uri in (backchannel_logout_uri, events_uri):
        if uri:
            validate_server_uri(uri)
    chosen_event_types = validate_event_types(event_types) if event_types else None
    secret = secrets.token_urlsafe(32) if auth_method in SECRET_AUTH_METHODS else None
    client = Client(
        client_id=secrets.token_urlsafe(16),
        name=name,
        client_secret_digest=digest(secret) if secret else None,
        token_endpoint_auth_method=auth_method,
        redirect_uris=[validate_redirect_uri(uri) for uri in redirect_uris],
        post_logout_redirect_uris=[validate_redirect_uri(u) for u in post_logout_redirect_uris],
        grant_types=grants,
        scope=" ".join(scopes),
        id_token_signed_response_alg=id_token_alg,
        is_first_party=first_party,
        wechat_appid=wechat_appid,
        backchannel_logout_uri=backchannel_logout_uri,
        events_uri=events_uri,
        event_types=chosen_event_types,
        jwks=jwks,
        require_mfa=require_mfa,
    )
    db.session.add(client)
    db.session.commit()
    return client, secret


def check_management_scopes(scopes: Iterable[str], grant_types: Iterable[str]) -> None:
    """The management API's `idp:` scopes only for a client_credentials-only client (issue 23
    item 3): a client of the login flow holds users' tokens and must hold no more."""
    misplaced = management_scopes_misplaced(set(scopes), set(grant_types))
    if misplaced:
        raise ClientSpecError(
            f"{' '.join(sorted(misplaced))}: management API scopes are only for a client whose "
            "sole grant type is client_credentials"
        )


def choose_auth_method(requested: str | None, public: bool, jwks: dict[str, Any] | None) -> str:
    """The registered method: as asked, else `none` for a public client, `private_key_jwt` for
    one with keys, `client_secret_basic` otherwise. Refuses combinations that cannot work."""
    if requested:
        method = requested
    elif public:
        method = "none"
    else:
        method = "private_key_jwt" if jwks is not None else SECRET_AUTH_METHODS[0]
    if method not in AUTH_METHODS:
        raise ClientSpecError(
            f"unknown token endpoint auth method {method!r}; one of: {', '.join(AUTH_METHODS)}"
        )
    if public and method != "none":
        raise ClientSpecError(f"a public client has no credentials: it cannot use {method}")
    if method == "private_key_jwt":
        validate_public_jwks(jwks)
    elif jwks is not None:
        raise ClientSpecError(f"a JWKS is for private_key_jwt, not {method}")
    return method


def validate_public_jwks(jwks: dict[str, Any] | None) -> None:
    """RFC 7517 §5: a JSON Web Key Set of public keys that sign (RSA or EC)."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ClientSpecError("private_key_jwt needs the client's public JWKS ({\"keys\": [...]})")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise ClientSpecError("every JWKS key must be an RSA or EC public key")
        if "d" in key:
            raise ClientSpecError("the JWKS holds a private key: register the public keys only")
    try:
        KeySet.import_key_set(cast(KeySetSerialization, jwks))
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise ClientSpecError(f"the JWKS cannot be read: {error}") from None


def rotate_client_secret(client: Client) -> str:
    secret = secrets.token_urlsafe(32)
    client.client_secret_digest = digest(secret)
    db.session.commit()
    return secret
