"""Creating and editing relying parties from the admin forms.

Creation is `idp.oidc.clients.create_client`; an edit re-applies the same checks to the new
values (by the same validators), so a client can never be edited into a shape it could not have
been created in.
"""

from __future__ import annotations

import json
from typing import Any

from idp.admin.forms import ClientForm
from idp.events.outbox import subscription_of
from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.catalogue import registrable_scopes
from idp.oidc.clients import (
    KNOWN_GRANT_TYPES,
    SECRET_AUTH_METHODS,
    ClientSpecError,
    check_management_scopes,
    choose_auth_method,
    create_client,
    rotate_client_secret,
    validate_event_types,
    validate_redirect_uri,
    validate_server_uri,
)
from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.oidc.models import Client


def lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def spec_from_form(form: ClientForm) -> dict[str, Any]:
    return {
        "name": (form.name.data or "").strip(),
        "redirect_uris": lines(form.redirect_uris.data),
        "grant_types": list(form.grant_types.data or []),
        "scope": (form.scope.data or "").strip() or None,
        "first_party": bool(form.first_party.data),
        "wechat_appid": (form.wechat_appid.data or "").strip() or None,
        "events_uri": (form.events_uri.data or "").strip() or None,
        "event_types": list(form.event_types.data or []),
        "post_logout_redirect_uris": lines(form.post_logout_redirect_uris.data),
        "backchannel_logout_uri": (form.backchannel_logout_uri.data or "").strip() or None,
    }


def create_from_form(form: ClientForm, actor: Actor) -> tuple[Client, str | None]:
    spec = spec_from_form(form)
    for uri in (spec["events_uri"], spec["backchannel_logout_uri"]):
        if uri:
            _check_https_endpoint(uri)
    client, secret = create_client(
        public=bool(form.public.data),
        token_endpoint_auth_method=form.token_endpoint_auth_method.data or None,
        jwks=jwks_from_form(form),
        **spec,
    )
    audit.record("admin.client_create", actor, None, client_id=client.client_id,
                 name=client.name, public=client.is_public,
                 token_endpoint_auth_method=client.token_endpoint_auth_method)
    db.session.commit()
    return client, secret


def update_from_form(client: Client, form: ClientForm, actor: Actor) -> None:
    spec = spec_from_form(form)
    grants = spec["grant_types"]
    if set(grants) - set(KNOWN_GRANT_TYPES):
        raise ClientSpecError("unknown grant types")
    if not grants:
        raise ClientSpecError("choose at least one grant type")
    if "authorization_code" in grants and not spec["redirect_uris"]:
        raise ClientSpecError("authorization_code needs at least one redirect URI")
    if client.is_public and "client_credentials" in grants:
        raise ClientSpecError("a public client cannot use client_credentials")
    if TOKEN_EXCHANGE in grants and not (client.is_public and spec["wechat_appid"]):
        raise ClientSpecError("the mini-program grant needs a public client and a WeChat appid")
    scopes = (spec["scope"] or client.scope).split()
    unknown = set(scopes) - set(registrable_scopes())
    if unknown:
        raise ClientSpecError(f"unknown scopes: {' '.join(sorted(unknown))}")
    check_management_scopes(scopes, grants)
    for uri in (spec["events_uri"], spec["backchannel_logout_uri"]):
        if uri:
            _check_https_endpoint(uri)
    method = form.token_endpoint_auth_method.data or client.token_endpoint_auth_method
    jwks = jwks_from_form(form)
    if method == "private_key_jwt" and jwks is None:
        jwks = client.jwks  # keep the registered keys
    if method != client.token_endpoint_auth_method or jwks != client.jwks:
        choose_auth_method(method, client.is_public, jwks if method == "private_key_jwt" else None)
    before = _fields(client)
    client.name = spec["name"]
    client.redirect_uris = [validate_redirect_uri(uri) for uri in spec["redirect_uris"]]
    client.post_logout_redirect_uris = [
        validate_redirect_uri(uri) for uri in spec["post_logout_redirect_uris"]
    ]
    client.grant_types = grants
    client.scope = " ".join(scopes)
    client.is_first_party = spec["first_party"]
    client.wechat_appid = spec["wechat_appid"]
    client.events_uri = spec["events_uri"]
    client.event_types = validate_event_types(spec["event_types"])
    client.backchannel_logout_uri = spec["backchannel_logout_uri"]
    client.token_endpoint_auth_method = method
    client.jwks = jwks if method == "private_key_jwt" else None
    after = _fields(client)
    changed = {key: {"from": before[key], "to": after[key]}
               for key in after if before[key] != after[key]}
    audit.record("admin.client_update", actor, None, client_id=client.client_id, changed=changed)
    db.session.commit()


def rotate_secret(client: Client, actor: Actor) -> str:
    if client.token_endpoint_auth_method not in SECRET_AUTH_METHODS:
        raise ClientSpecError("only a client that authenticates with a secret has one to rotate")
    secret = rotate_client_secret(client)
    audit.record("admin.client_secret_rotate", actor, None, client_id=client.client_id)
    db.session.commit()
    return secret


def form_data(client: Client) -> dict[str, Any]:
    return {
        "name": client.name,
        "public": client.is_public,
        "redirect_uris": "\n".join(client.redirect_uris or []),
        "grant_types": list(client.grant_types or []),
        "scope": client.scope,
        "first_party": client.is_first_party,
        "wechat_appid": client.wechat_appid or "",
        "events_uri": client.events_uri or "",
        "event_types": list(subscription_of(client)),
        "post_logout_redirect_uris": "\n".join(client.post_logout_redirect_uris or []),
        "backchannel_logout_uri": client.backchannel_logout_uri or "",
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "jwks": json.dumps(client.jwks, indent=1) if client.jwks else "",
    }


def jwks_from_form(form: ClientForm) -> dict[str, Any] | None:
    text = (form.jwks.data or "").strip()
    if not text:
        return None
    try:
        jwks = json.loads(text)
    except ValueError:
        raise ClientSpecError("the JWKS is not JSON") from None
    if not isinstance(jwks, dict):
        raise ClientSpecError("the JWKS must be a JSON object with \"keys\"")
    return jwks


def _check_https_endpoint(uri: str) -> None:
    """Server-to-server endpoints: the redirect URI rules, and a public address."""
    validate_server_uri(uri)


def _fields(client: Client) -> dict[str, Any]:
    data = form_data(client)
    data.pop("public")
    return data
