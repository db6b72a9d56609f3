"""Authlib's authorization server, configured for this IdP."""

from __future__ import annotations

import json
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import ClientMixin, InvalidClientError, OAuth2Error
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.local import LocalProxy

from idp.extensions import db
from idp.models_base import utcnow
from idp.observability import metrics
from idp.oidc import endpoints, grants, token_exchange
from idp.oidc.client_auth import PrivateKeyJWTAuthentication
from idp.oidc.context import auth_context, issuer
from idp.oidc.models import AuthorizationCode, Client, RefreshToken, token_digest
from idp.oidc.tokens import AccessTokenGenerator, AccessTokenValidator, unverified_claims
from idp.scopes import REGISTRABLE_SCOPES


@dataclass(frozen=True, eq=False)
class ClientSnapshot(ClientMixin):  # type: ignore[misc]
    """An immutable copy of a `Client` row, detached from any session: what the protocol code
    reads of a client (token endpoint, userinfo, authorize, logout). The methods are `Client`'s
    own, so the checks (secret, auth method, grant types, redirect URIs) are the same code."""

    client_id: str
    name: str
    client_secret_digest: str | None
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str
    id_token_signed_response_alg: str
    is_first_party: bool
    wechat_appid: str | None
    backchannel_logout_uri: str | None
    events_uri: str | None
    jwks_json: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: Client) -> ClientSnapshot:
        return cls(
            client_id=row.client_id,
            name=row.name,
            client_secret_digest=row.client_secret_digest,
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            redirect_uris=tuple(row.redirect_uris or ()),
            post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
            grant_types=tuple(row.grant_types or ()),
            scope=row.scope,
            id_token_signed_response_alg=row.id_token_signed_response_alg,
            is_first_party=bool(row.is_first_party),
            wechat_appid=row.wechat_appid,
            backchannel_logout_uri=row.backchannel_logout_uri,
            events_uri=row.events_uri,
            jwks_json=json.dumps(row.jwks) if row.jwks is not None else None,
            created_at=row.created_at,
        )

    @property
    def jwks(self) -> dict[str, Any] | None:
        return json.loads(self.jwks_json) if self.jwks_json is not None else None

    is_public = Client.is_public
    client_metadata = Client.client_metadata
    get_client_id = Client.get_client_id
    get_default_redirect_uri = Client.get_default_redirect_uri
    get_allowed_scope = Client.get_allowed_scope
    check_redirect_uri = Client.check_redirect_uri
    check_client_secret = Client.check_client_secret
    check_endpoint_auth_method = Client.check_endpoint_auth_method
    check_response_type = Client.check_response_type
    check_grant_type = Client.check_grant_type


class ClientCache:
    """Per-process cache of client snapshots, trusted for `ttl` seconds (IDP_KEY_CACHE_SECONDS,
    like the signing keys). A change committed through this process is seen at once (the entry
    is dropped on flush and on commit); one made through another process (secret rotation, an
    edit, a deletion) is seen here within `ttl`. Unknown client ids are never cached."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entries: dict[str, tuple[float, ClientSnapshot]] = {}
        _CACHES.add(self)

    def get(self, client_id: str) -> ClientSnapshot | None:
        if self.ttl > 0:
            entry = self._entries.get(client_id)
            if entry is not None and entry[0] > time.monotonic():
                return entry[1]
        row = db.session.get(Client, client_id)
        if row is None:
            self._entries.pop(client_id, None)
            return None
        snapshot = ClientSnapshot.of(row)
        if self.ttl > 0:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[client_id] = (time.monotonic() + self.ttl, snapshot)
        return snapshot

    def invalidate(self, client_id: str | None = None) -> None:
        if client_id is None:
            self._entries.clear()
        else:
            self._entries.pop(client_id, None)


_CACHES: weakref.WeakSet[ClientCache] = weakref.WeakSet()
_CACHES_LOCK = threading.Lock()


def _forget_changed_clients(session: Session, *_: Any) -> None:
    """Drops every client written by `session` from every cache of this process: at flush (so a
    read after it refetches) and again at commit (so a concurrent read between the two, which
    saw the old committed row, does not keep it)."""
    changed = session.info.setdefault("idp_changed_clients", set())
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, Client) and instance.client_id:
            changed.add(instance.client_id)
    _drop(changed)


def _forget_after_commit(session: Session) -> None:
    _drop(session.info.pop("idp_changed_clients", set()))


def _drop(client_ids: set[str]) -> None:
    if not client_ids:
        return
    with _CACHES_LOCK:
        caches = list(_CACHES)
    for cache in caches:
        for client_id in client_ids:
            cache.invalidate(client_id)


event.listen(Session, "before_flush", _forget_changed_clients)
event.listen(Session, "after_commit", _forget_after_commit)
event.listen(Session, "after_soft_rollback", lambda session, _tx: _forget_after_commit(session))


def cached_client(client_id: str) -> ClientSnapshot | None:
    """The client, from this process's cache (see `ClientCache`)."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    cache: ClientCache = current_app.extensions["idp_client_cache"]
    return cache.get(client_id)


class IdentityProviderServer(AuthorizationServer):
    def query_client(self, client_id: str) -> ClientSnapshot | None:  # type: ignore[override]
        return cached_client(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Only refresh tokens are stored; JWT access tokens are self-contained."""
        access = unverified_claims(token["access_token"])
        g.issued_access_claims = access
        code = getattr(request, "authorization_code", None)
        refresh = token.get("refresh_token")
        family = g.pop("refresh_family", None) or grants.new_family()
        if isinstance(code, AuthorizationCode):
            code.access_jti = access["jti"]
            if refresh:
                code.token_family = family
        if refresh and request.user is not None:
            context = auth_context()
            now = utcnow()
            db.session.add(
                RefreshToken(
                    token_digest=token_digest(refresh),
                    family=family,
                    client_id=request.client.client_id,
                    account_id=request.user.id,
                    scope=token.get("scope", ""),
                    auth_time=context.auth_time or int(now.timestamp()),
                    amr=context.amr,
                    session_id=context.session_id,
                    access_jti=access["jti"],
                    access_expires_at=datetime.fromtimestamp(access["exp"], UTC),
                    issued_at=now,
                    expires_at=now
                    + timedelta(seconds=int(current_app.config["IDP_REFRESH_TOKEN_TTL"])),
                )
            )
        if code is not None or refresh:
            db.session.commit()
        metrics.count_token_issued(getattr(request.payload, "grant_type", None))

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        try:
            return super().authenticate_client(request, methods, endpoint)
        except (ValueError, UnicodeDecodeError) as error:
            # Authlib's header parsing trips on e.g. "Authorization: Bearer " or non-UTF-8
            # Basic credentials (found by tests/security/test_hostile_input.py).
            raise InvalidClientError(description="Malformed client credentials.") from error

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Any:
        db.session.rollback()
        return super().handle_error_response(request, error)


class Issuer(IssuerParameter):
    """RFC 9207: `iss` in every authorization response, errors included."""

    def get_issuer(self) -> str:
        return issuer()


# One server per app: Authlib's registries (grants, hooks, endpoints) are lists, and registering
# into a module-level instance at every `create_app` would run each hook once per app created.
authorization_server: IdentityProviderServer = LocalProxy(  # type: ignore[assignment]
    lambda: current_app.extensions["idp_authorization_server"]
)
require_oauth = ResourceProtector()
require_oauth.register_token_validator(AccessTokenValidator())


def init_app(app: Flask) -> None:
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", list(REGISTRABLE_SCOPES))
    server = IdentityProviderServer()
    server.init_app(app)
    server.register_token_generator("default", AccessTokenGenerator())
    server.register_grant(
        grants.AuthorizationCodeGrant,
        [grants.S256CodeChallenge(required=True), grants.OpenIDConnectCode(require_nonce=False)],
    )
    server.register_grant(grants.RefreshTokenGrant, [grants.OpenIDConnectRefresh()])
    server.register_grant(grants.ClientCredentialsGrant)
    server.register_grant(token_exchange.WeChatTokenExchangeGrant, [token_exchange.WeChatIdToken()])
    server.register_client_auth_method(
        PrivateKeyJWTAuthentication.CLIENT_AUTH_METHOD, PrivateKeyJWTAuthentication()
    )
    server.register_extension(Issuer())
    server.register_endpoint(endpoints.Revocation)
    server.register_endpoint(endpoints.Introspection)
    server.register_endpoint(endpoints.EndSession)
    server.register_endpoint(endpoints.UserInfo(resource_protector=require_oauth))
    app.extensions["idp_authorization_server"] = server
    app.extensions["idp_client_cache"] = ClientCache(float(app.config["IDP_KEY_CACHE_SECONDS"]))
