"""`POST /wechat/phone` (CONTRACT §6): an API for the mini-program. Thin: parse, call `phone`,
answer in RFC 6750 / RFC 6749 shapes."""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import Response, current_app, request

from idp.extensions import csrf, db, limiter
from idp.identity.links import AccountUnavailable
from idp.identity.models import Account
from idp.identity.rules import MergeRefused
from idp.oidc.models import Client
from idp.oidc.server import require_oauth
from idp.oidc.tokens import AccessToken
from idp.wechat.errors import WeChatError
from idp.wechat.models import WeChatAppKind
from idp.wechat_login import phone
from idp.wechat_login.blueprint import bp
from idp.wechat_login.errors import (
    NotAMiniProgramClient,
    oauth_error_for,
    oauth_error_for_missing_app,
)
from idp.wechat_login.mfa import MfaRequiredError, demand_second_factor
from idp.wechat_login.token_exchange import WECHAT_AMR, issue_tokens
from idp.wechat_login.upstream import AppNotConfigured, configured_app

MAX_FIELD_LENGTH = 4096


class PhoneTakenError(OAuth2Error):
    """The phone is verified on an account the rules will not merge with (e.g. it holds another
    WeChat user: a recycled number). An admin can look at it."""

    error = "access_denied"
    status_code = 403


@bp.post("/wechat/phone")
@csrf.exempt
# Each call spends a WeChat phone quota and may merge accounts: a few per minute per address.
@limiter.limit(lambda: current_app.config["IDP_PHONE_BINDING_RATE_LIMIT"])
def bind_phone() -> Response:
    """Bearer token of the mini-program (RFC 6750), then `{"code"}` or the legacy
    `{"encryptedData", "iv"}`; answers with the phone and fresh tokens for the surviving account."""
    try:
        token: AccessToken = require_oauth.acquire_token()
        client = _miniprogram_client(token)
        account = token.get_user()
        if account is None:
            raise InvalidTokenError()
        binding = _bind_phone(account, client.wechat_appid or "", _json_object())
        amr = _caller_amr(token)
        if "mfa" not in amr:
            # The binding may have merged the caller into an account with a second factor: its
            # tokens need that factor, as the exchange would have asked (`mfa.py`). The binding
            # stays done; the answer is `mfa_required`, completed at the token endpoint.
            try:
                demand_second_factor(client, binding.account, token.scope, amr, None)
            except MfaRequiredError as required:
                required.extra = _binding_body(binding)
                raise

        tokens = issue_tokens(client, binding.account, token.scope,
                              token.claims.get("auth_time"), amr)
    except OAuth2Error as error:
        return _oauth_error(error)
    body = {**_binding_body(binding), **tokens}
    return Response(
        json.dumps(body),
        status=200,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def _binding_body(binding: phone.PhoneBinding) -> dict[str, Any]:
    return {"sub": binding.account.id, "phone_number": binding.phone_number,
            "merged": binding.merged}


def _caller_amr(token: AccessToken) -> list[str]:
    amr = token.claims.get("amr")
    if isinstance(amr, list) and all(isinstance(method, str) for method in amr):
        return list(amr)
    return list(WECHAT_AMR)


def _miniprogram_client(token: AccessToken) -> Client:
    client = token.get_client()
    try:
        configured_app(client.wechat_appid if client else None, WeChatAppKind.MINIPROGRAM)
    except AppNotConfigured:
        raise NotAMiniProgramClient("Only a mini-program client can bind a WeChat phone.") from None
    assert client is not None
    return client


def _json_object() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequestError("The body must be a JSON object.")
    return body


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_FIELD_LENGTH:
        raise InvalidRequestError(f"'{name}' must be a non-empty string.")
    return value


def _bind_phone(account: Account, appid: str, body: dict[str, Any]) -> phone.PhoneBinding:
    try:
        if "code" in body:
            return phone.bind_phone_with_code(account, appid, _field(body, "code"))
        if "encryptedData" in body:
            return phone.bind_phone_with_encrypted_data(
                account, appid, _field(body, "encryptedData"), _field(body, "iv")
            )
    except WeChatError as error:
        raise oauth_error_for(error, appid) from None
    except AppNotConfigured as error:
        raise oauth_error_for_missing_app(error) from None
    except phone.NoWeChatSession:
        raise InvalidGrantError("No WeChat session for this user: call wx.login() again.") from None
    except MergeRefused:
        raise PhoneTakenError(
            "This phone number belongs to another account that cannot be merged automatically."
        ) from None
    except AccountUnavailable:
        raise InvalidTokenError() from None
    raise InvalidRequestError("Send {'code'} from getPhoneNumber, or {'encryptedData', 'iv'}.")


def _oauth_error(error: OAuth2Error) -> Response:
    db.session.rollback()
    status, body, headers = error()
    return Response(json.dumps(body), status=status, headers=headers)
