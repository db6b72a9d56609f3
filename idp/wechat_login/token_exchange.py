"""Mini-program login: RFC 8693 token exchange of a WeChat `wx.login()` code (CONTRACT §5).

The grant is plugged into the protocol's server by `register_grant` (called from
`idp.wechat_login.views.init_app`): `idp.oidc` knows nothing of WeChat.

The mini-program is a public client bound to one appid; the `subject_token` is the js_code, and
what comes back is an ordinary token response (plus `issued_token_type`, RFC 8693 §2.2.1) — or,
when a second factor is due, `mfa_required` and an `mfa_token` for the second step
(`mfa.py`, `mfa_exchange.py`).
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oidc.core import OpenIDToken
from flask import Flask

from idp import statements_alone
from idp.extensions import db
from idp.identity.links import AccountUnavailable
from idp.identity.models import Account
from idp.identity.rules import MergeRefused
from idp.identity.status import DeletionPending, may_hold_tokens
from idp.oidc.context import auth_context
from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.oidc.errors import InvalidTargetError
from idp.oidc.grants import IdTokenIssuer
from idp.oidc.interaction import repeated_parameter
from idp.oidc.models import Client
from idp.oidc.server import authorization_server, server_of
from idp.scopes import scope_set
from idp.wechat.errors import WeChatError
from idp.wechat_login.errors import oauth_error_for, oauth_error_for_missing_app
from idp.wechat_login.mfa import MFA_TOKEN_TYPE, demand_second_factor
from idp.wechat_login.miniprogram import MiniProgramSignIn, sign_in_with_js_code
from idp.wechat_login.upstream import AppNotConfigured

JS_CODE_TOKEN_TYPE = "urn:wechat:params:oauth:token-type:js_code"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
WECHAT_AMR = ["wechat"]
DEFAULT_SCOPE = "openid"
MAX_CODE_LENGTH = 256
MAX_ACR_VALUES_LENGTH = 512
# RFC 6749 §5.2 `invalid_grant`; the mini-program shows it and sends the user to the website.
DELETION_PENDING_DESCRIPTION = (
    "The account is pending deletion: sign in on the website to cancel the deletion first."
)
# Every parameter either step reads: each may appear once (RFC 6749 §3.2).
EXCHANGE_PARAMETERS = (
    "grant_type", "client_id", "subject_token", "subject_token_type", "actor_token",
    "actor_token_type", "requested_token_type", "audience", "resource", "scope", "acr_values",
    "otp", "recovery_code",
)


class ExchangeGrant(BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    """What both steps of the mini-program's exchange share: RFC 8693 §2.1 narrowed to a public
    mini-program client, and the token response."""

    GRANT_TYPE = TOKEN_EXCHANGE
    # A mini-program package is readable by anyone: there is no secret to keep (CONTRACT §5).
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def validate_mini_program_request(self) -> Client:
        """The checks made before anything else is read or written (RFC 8693 §2.1, RFC 6749
        §3.2: no parameter twice)."""
        data = self.request.payload.data
        repeated = repeated_parameter(data, EXCHANGE_PARAMETERS)
        if repeated is not None:
            raise InvalidRequestError(f"Parameter '{repeated}' appears more than once.")
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE) or not client.wechat_appid:
            raise UnauthorizedClientError(
                "The client is not a mini-program client allowed to exchange WeChat codes."
            )
        self.request.client = client
        if data.get("actor_token") or data.get("actor_token_type"):
            raise InvalidRequestError("Delegation ('actor_token') is not supported.")
        _check_requested_token_type(data)
        return client

    def token_response(
        self, account: Account, scope: str, amr: list[str]
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        self.request.user = account
        context = auth_context()
        context.auth_time = int(time.time())
        context.amr = list(amr)
        context.session_id = None
        token = self.generate_token(
            user=account,
            scope=scope,
            include_refresh_token="offline_access" in scope_set(scope),
        )
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def save_token(self, token: dict[str, Any]) -> None:
        """Staged only: each step commits once, the sign-in's writes and the tokens together."""
        self.server.stage_token(token, self.request)


class WeChatTokenExchangeGrant(ExchangeGrant):
    """The first step: the `wx.login()` code. When a second factor is due (`mfa.py`), the answer
    is `mfa_required` with an `mfa_token` instead of tokens."""

    @classmethod
    def check_token_endpoint(cls, request: OAuth2Request) -> bool:
        """Every token exchange but the second step's, which `mfa_exchange.py` answers."""
        return bool(
            super().check_token_endpoint(request)
            and request.payload.data.get("subject_token_type") != MFA_TOKEN_TYPE
        )

    def validate_token_request(self) -> None:
        """RFC 8693 §2.1, narrowed to the one exchange we offer."""
        client = self.validate_mini_program_request()
        data = self.request.payload.data
        if data.get("subject_token_type") != JS_CODE_TOKEN_TYPE:
            raise InvalidRequestError(f"'subject_token_type' must be {JS_CODE_TOKEN_TYPE}.")
        _check_subject_token(data)
        if data.get("otp") or data.get("recovery_code"):
            raise InvalidRequestError("A code goes with the mfa_token of the second step.")
        _check_acr_values(data)
        self.validate_requested_scope()
        _check_client_may_ask(client, self.requested_scope)

    @property
    def requested_scope(self) -> str:
        return self.request.payload.scope or DEFAULT_SCOPE

    @hooked  # type: ignore[misc]
    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: Client = self.request.client
        data = self.request.payload.data
        signed_in = self._sign_in(client, data["subject_token"])
        account, scope = signed_in.account, self.requested_scope
        try:
            demand_second_factor(client, account, scope, WECHAT_AMR, data.get("acr_values"),
                                 signed_in.has_second_factor)
        except OAuth2Error:
            # The first factor was proved: its login record and WeChat's latest session key
            # are kept, though the token endpoint rolls back an error's session.
            db.session.commit()
            raise
        response = self.token_response(account, scope, WECHAT_AMR)
        statements_alone.commit()  # one commit: the login's writes and the refresh token
        return response

    @staticmethod
    def _sign_in(client: Client, js_code: str) -> MiniProgramSignIn:
        appid = client.wechat_appid or ""
        try:
            return sign_in_with_js_code(appid, js_code, client.client_id)
        except WeChatError as error:
            raise oauth_error_for(error, appid) from None
        except AppNotConfigured as error:
            raise oauth_error_for_missing_app(error) from None
        except DeletionPending:
            raise InvalidGrantError(DELETION_PENDING_DESCRIPTION) from None
        except (MergeRefused, AccountUnavailable):
            raise AccessDeniedError("This WeChat user cannot sign in here.") from None


class WeChatIdToken(IdTokenIssuer, OpenIDToken):  # type: ignore[misc]
    """The ID token of the exchange (OIDC Core §2): no nonce, since there was no authorization
    request; `amr` is ["wechat"]."""


def issue_tokens(
    client: Client, account: Account, scope: str, auth_time: int | None,
    amr: list[str] | None = None,
) -> dict[str, Any]:
    """A token response for `account` outside the token endpoint (phone binding, after which the
    caller's old tokens may have died in a merge): access token, refresh token when
    `offline_access` is in `scope` (stored as the token endpoint stores it), ID token when
    `openid` is. `amr`: how the caller authenticated (default: WeChat alone). An account that
    may hold no token (`identity.status.may_hold_tokens`) is `invalid_grant`."""
    if not may_hold_tokens(account):
        raise InvalidGrantError("The account cannot be issued tokens.")
    request: OAuth2Request = authorization_server.create_oauth2_request(None)
    request.client = client
    request.user = account
    context = auth_context()
    context.auth_time = auth_time or int(time.time())
    context.amr = list(amr or WECHAT_AMR)
    context.session_id = None
    token: dict[str, Any] = authorization_server.generate_token(
        grant_type=TOKEN_EXCHANGE,
        client=client,
        user=account,
        scope=scope,
        include_refresh_token="offline_access" in scope_set(scope),
    )
    token["issued_token_type"] = ACCESS_TOKEN_TYPE
    authorization_server.save_token(token, request)
    if "openid" in scope_set(token.get("scope")):
        token["id_token"] = WeChatIdToken().encode_id_token(token, request)
    return token


def register_grant(app: Flask) -> None:
    server_of(app).register_grant(WeChatTokenExchangeGrant, [WeChatIdToken()])
    # The second step (`mfa_exchange.py`) is registered by `idp.wechat_login.views`.


def _check_subject_token(data: Any) -> None:
    code = data.get("subject_token")
    if not code or len(code) > MAX_CODE_LENGTH or not code.isprintable():
        raise InvalidRequestError("'subject_token' must be the code from wx.login().")


def _check_acr_values(data: Any) -> None:
    """OIDC Core §3.1.2.1's `acr_values`, accepted on the token request: printable, bounded."""
    acr_values = data.get("acr_values")
    if acr_values is not None and (
        len(acr_values) > MAX_ACR_VALUES_LENGTH or not acr_values.isprintable()
    ):
        raise InvalidRequestError("'acr_values' must be space-separated ACR values.")


def _check_requested_token_type(data: Any) -> None:
    requested = data.get("requested_token_type")
    if requested and requested != ACCESS_TOKEN_TYPE:
        raise InvalidRequestError(f"Only '{ACCESS_TOKEN_TYPE}' can be issued.")
    if data.get("audience") or data.get("resource"):
        # RFC 8693 §2.2.2: the tokens are for this IdP's client, not for another target.
        raise InvalidTargetError("Tokens are issued for the requesting client only.")


def _check_client_may_ask(client: Client, scope: str) -> None:
    if not scope_set(scope) <= scope_set(client.scope):
        raise InvalidScopeError("The client is not registered for every requested scope.")
