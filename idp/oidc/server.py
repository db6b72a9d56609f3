"""Authlib's authorization server, configured for this IdP."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import quote_plus

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidScopeError, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, Request, current_app
from flask import request as flask_request
from werkzeug.local import LocalProxy

from idp.extensions import db, stage_write
from idp.identity.catalogue import registrable_scopes
from idp.observability import metrics
from idp.oidc import client_auth_failures, client_cache, endpoints, grants, refresh_tokens
from idp.oidc import token_statements as statements
from idp.oidc.client_auth import PrivateKeyJWTAuthentication
from idp.oidc.client_cache import ClientSnapshot, cached_client
from idp.oidc.context import issuer
from idp.oidc.errors import ClientAuthenticationFailed
from idp.oidc.releases import record_release
from idp.oidc.tokens import AccessTokenGenerator, AccessTokenValidator, unverified_claims
from idp.oidc.transport import CHECKED, secure_origin
from idp.scopes import REGISTRABLE_SCOPES

BUILTIN_SCOPES = frozenset(REGISTRABLE_SCOPES)


class CurrentRequestPayload(FlaskOAuth2Payload):  # type: ignore[misc]
    """Authlib's payload of a Flask request, reading the request's parameters from the request
    object itself rather than through Flask's `request` proxy on each of the dozens of reads of
    an authorization request's validation."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self._values = request.values

    @property
    def data(self) -> Any:
        return self._values


class CurrentRequest(FlaskOAuth2Request):  # type: ignore[misc]
    """Authlib's request of a Flask request, its transport checked per origin
    (`idp.oidc.transport`) and its URI built only if something reads it."""

    def __init__(self, request: Request) -> None:
        self._request = request
        origin = f"{request.scheme}://{request.host}"
        OAuth2Request.__init__(self, request.method,
                               CHECKED if secure_origin(origin) else request.url,
                               headers=request.headers)
        self.payload = CurrentRequestPayload(request)

    @property
    def uri(self) -> str:
        return self._request.url

    @uri.setter
    def uri(self, _value: str) -> None:
        """Authlib's constructor sets it; the property reads the request."""


class IdentityProviderServer(AuthorizationServer):
    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        """Authlib's request of the current Flask request (made of the request object behind
        the proxy), unless the caller built one (the authorization endpoint's hot lane,
        `idp/oidc/hot_paths/authorize.py`)."""
        if isinstance(request, OAuth2Request):
            return request
        return CurrentRequest(cast(Any, flask_request)._get_current_object())

    def query_client(self, client_id: str) -> ClientSnapshot | None:  # type: ignore[override]
        return cached_client(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Only refresh tokens are stored; JWT access tokens are self-contained. A token for an
        account also records the claims released (`releases`), so it commits too."""
        self.stage_token(token, request)
        if (getattr(request, "authorization_code", None) is not None
                or token.get("refresh_token") or request.user is not None):
            db.session.commit()

    def stage_token(self, token: dict[str, Any], request: Any) -> None:
        """`save_token` without the commit."""
        refresh = token.get("refresh_token")
        if refresh and request.user is not None:
            access = unverified_claims(token["access_token"])
            token["refresh_token"], row = refresh_tokens.issue(
                refresh, refresh_tokens.new_family(), request.client.client_id, request.user.id,
                token.get("scope", ""), access)
            stage_write((statements.INSERT_REFRESH, row))
        if request.user is not None:
            record_release(request.user.id, request.client.client_id, token.get("scope"))
        metrics.count_token_issued(getattr(request.payload, "grant_type", None))

    def validate_requested_scope(self, scope: str | None) -> None:
        """RFC 6749 §3.3: a scope the IdP does not know is `invalid_scope`; the known ones
        include the operator's own, declared while the IdP runs (so not a start-up list)."""
        if not scope:
            return
        asked = set(scope_to_list(scope))
        # The built-in scopes answer almost every request without reading the catalogue.
        if not asked <= BUILTIN_SCOPES and not asked <= set(registrable_scopes()):
            raise InvalidScopeError()

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        """Every failure is `invalid_client`, challenged in the scheme the client used
        (RFC 6749 §5.2, `errors.ClientAuthenticationFailed`). At introspection and revocation,
        a client whose authentications failed too often is refused for a while
        (`client_auth_failures`; the token endpoint limits every request per client)."""
        guarded = (client_auth_failures.named_client(request)
                   if endpoint in client_auth_failures.GUARDED_ENDPOINTS else None)
        if guarded is not None:
            form = request.payload.data if request.payload is not None else {}
            along = (endpoints.versions_hint(form.get("token"))
                     if endpoint == "introspection" else None)
            client_auth_failures.refuse_if_locked(guarded, along)
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            failure = ClientAuthenticationFailed(
                error.description, self.challenge_realm(request, methods))
        except (ValueError, UnicodeDecodeError):
            # Authlib's header parsing trips on e.g. "Authorization: Bearer " or non-UTF-8
            # Basic credentials (found by tests/security/test_hostile_input.py).
            failure = ClientAuthenticationFailed(
                "Malformed client credentials.", self.challenge_realm(request, methods))
        if guarded is not None:
            client_auth_failures.count_failure(guarded)
        raise failure

    @staticmethod
    def challenge_realm(request: Any, methods: Any) -> str | None:
        """The realm of a Basic challenge, when one is the right answer: the client used HTTP
        Basic, or presented nothing at all where Basic is accepted. None otherwise."""
        scheme = (request.headers.get("Authorization") or "").split(" ", 1)[0].lower()
        form = request.payload.data if request.payload is not None else {}
        presented_nothing = not scheme and not any(
            form.get(name) for name in ("client_id", "client_secret", "client_assertion")
        )
        if scheme == "basic" or (presented_nothing and "client_secret_basic" in methods):
            return issuer()
        return None

    def create_endpoint_response(self, name: str, request: Any = None) -> Any:
        """Authlib's, with the refusals of building its request answered too (plain HTTP off
        loopback, RFC 6749 §3.1: `insecure_transport`) rather than raised past it (a 500)."""
        try:
            return super().create_endpoint_response(name, request)
        except OAuth2Error as error:
            return self.handle_error_response(request, error)

    def create_authorization_response(self, request: Any = None, grant_user: Any = None,
                                      grant: Any = None) -> Any:
        """Authlib's, without validating again a grant that `get_consent_grant` validated a
        moment before in this request (the same checks, the same answer: a second pass was a
        fifth of an authorization request's CPU). Its hooks run as Authlib's would (RFC 9207's
        `iss` is one)."""
        if grant is None or grant.redirect_uri is None:
            return super().create_authorization_response(request, grant_user, grant)
        self.execute_hook("before_create_authorization_response", grant_user=grant_user,
                          grant=grant)
        try:
            response = self.handle_response(
                *grant.create_authorization_response(grant.redirect_uri, grant_user))
        except OAuth2Error as error:
            error.state = grant.request.payload.state
            response = self.handle_error_response(grant.request, error)
        grant.execute_hook("after_authorization_response", response)
        self.execute_hook("after_create_authorization_response", response)
        return response

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Any:
        db.session.rollback()
        return super().handle_error_response(request, error)


class Issuer(IssuerParameter):
    """RFC 9207: `iss` in every authorization response, errors included."""

    def get_issuer(self) -> str:
        return issuer()

    def add_issuer_parameter(self, authorization_server: Any, response: Any) -> None:
        """Authlib's, without decoding and encoding again the whole query of a `Location` that
        Authlib has just encoded (`add_params_to_uri`, for the code or the error): `iss` is
        appended, encoded as Authlib encodes it (`quote_plus`), before any fragment."""
        location = response.location
        if not location:
            return
        base, hash_mark, fragment = location.partition("#")
        separator = "&" if "?" in base else "?"
        response.location = f"{base}{separator}iss={quote_plus(issuer())}{hash_mark}{fragment}"


# One server per app: Authlib's registries (grants, hooks, endpoints) are lists, and registering
# into a module-level instance at every `create_app` would run each hook once per app created.
authorization_server: IdentityProviderServer = LocalProxy(  # type: ignore[assignment]
    lambda: current_app.extensions["idp_authorization_server"]
)
require_oauth = ResourceProtector()
require_oauth.register_token_validator(AccessTokenValidator())


def server_of(app: Flask) -> IdentityProviderServer:
    """The app's server, for a domain that plugs a grant into it at start-up (Authlib's
    `register_grant`): the protocol knows the grants it ships, not those of its adapters."""
    server: IdentityProviderServer = app.extensions["idp_authorization_server"]
    return server


def init_app(app: Flask) -> None:
    server = IdentityProviderServer()
    server.init_app(app)
    server.register_token_generator("default", AccessTokenGenerator())
    server.register_grant(
        grants.AuthorizationCodeGrant,
        [grants.S256CodeChallenge(required=True), grants.OpenIDConnectCode(require_nonce=False)],
    )
    server.register_client_auth_method(
        PrivateKeyJWTAuthentication.CLIENT_AUTH_METHOD, PrivateKeyJWTAuthentication()
    )
    server.register_extension(Issuer())
    server.register_endpoint(endpoints.Revocation)
    server.register_endpoint(endpoints.Introspection)
    server.register_endpoint(endpoints.EndSession)
    app.extensions["idp_authorization_server"] = server
    client_cache.init_app(app)
