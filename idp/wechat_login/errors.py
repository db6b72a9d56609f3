"""WeChat's answers mapped, once, to the OAuth errors a client sees (RFC 6749 §5.2).

| WeChat                                    | client sees                        |
|-------------------------------------------|------------------------------------|
| 40029 invalid code, 40163 code used       | `invalid_grant` 400                |
| watermark of another appid, undecryptable | `invalid_grant` 400                |
| 40226 high-risk user                      | `access_denied` 400                |
| 45011 rate limit                          | `temporarily_unavailable` 503, Retry-After 60 |
| -1 busy, timeout, unreachable, garbage    | `temporarily_unavailable` 503, Retry-After 5  |
| 40001/40014/42001 after the one retry     | `temporarily_unavailable` 503, Retry-After 5  |
| phone number that does not parse, NUL in an id | `server_error` 502 + a log line          |
| 40013/40125/40164 app misconfigured       | `server_error` 500 + an operator log line     |
| any other errcode                         | `server_error` 500 + a log line               |

Log lines name the appid and the errcode, never the secret, a code or a session_key.
"""

from __future__ import annotations

import logging

from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidGrantError, OAuth2Error

from idp.oidc.errors import ServerError, TemporarilyUnavailableError
from idp.wechat import errors as wechat
from idp.wechat_login.upstream import AppNotConfigured

logger = logging.getLogger("idp.wechat_login")


class NotAMiniProgramClient(OAuth2Error):
    """A bearer token of a client that is not a mini-program, on an endpoint only a
    mini-program calls (phone binding, scan answer, the account centre's mini-program API)."""

    error = "unauthorized_client"
    status_code = 403

RATE_LIMIT_RETRY_AFTER = 60  # WeChat's quota is per user per minute
BUSY_RETRY_AFTER = 5


class BadUpstreamDataError(OAuth2Error):
    """WeChat answered with data that is wrong (RFC 9110 §15.6.3, 502 Bad Gateway): neither the
    client's fault nor ours, and not worth an immediate retry. No RFC 6749 code says "upstream",
    so the code is `server_error`; the status and description tell the difference."""

    error = "server_error"
    status_code = 502


def oauth_error_for(error: wechat.WeChatError, appid: str) -> OAuth2Error:
    if isinstance(error, wechat.InvalidCode | wechat.CodeAlreadyUsed):
        return InvalidGrantError("The WeChat code is invalid, expired or already used.")
    if isinstance(error, wechat.WatermarkMismatch):
        return InvalidGrantError("The WeChat data was issued to another app.")
    if isinstance(error, wechat.DecryptionFailed):
        return InvalidGrantError("The encrypted data does not match this WeChat session.")
    if isinstance(error, wechat.HighRiskUser):
        return AccessDeniedError("WeChat does not allow this user to sign in.")
    if isinstance(error, wechat.RateLimited):
        return TemporarilyUnavailableError(
            "Too many WeChat sign-ins; try again in a minute.", RATE_LIMIT_RETRY_AFTER
        )
    if isinstance(error, wechat.AppMisconfigured):
        logger.error(
            "WeChat rejected the credentials of app %s (errcode %s): check its appid and secret"
            " (idp wechat-apps) and the IP whitelist on the WeChat platform",
            appid,
            error.errcode,
        )
        return ServerError("The WeChat app is misconfigured; the operator has been told.")
    if isinstance(error, wechat.InvalidUpstreamData):
        logger.error("WeChat sent unusable data for app %s: %s", appid, error)
        return BadUpstreamDataError(
            "WeChat sent data that cannot be used; the operator has been told."
        )
    if error.temporary or isinstance(error, wechat.InvalidAccessToken):
        logger.warning("WeChat unavailable for app %s: %s", appid, error)
        return TemporarilyUnavailableError("WeChat is not answering; try again.", BUSY_RETRY_AFTER)
    logger.error("unexpected WeChat answer for app %s: %s", appid, error)
    return ServerError("WeChat gave an unexpected answer.")


def oauth_error_for_missing_app(error: AppNotConfigured) -> OAuth2Error:
    logger.error(
        "a client is bound to WeChat app %s, but no %s app of that appid is registered"
        " (idp wechat-apps create)",
        error.appid,
        error.kind,
    )
    return ServerError("The WeChat app of this client is not configured.")
