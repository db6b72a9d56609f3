"""What a person sees when WeChat refuses the callback of a browser sign-in (website QR connect,
Official Account web authorization): a page of `templates/wechat_login/message.html`, by kind.

| WeChat                                        | page                              | status |
|-----------------------------------------------|-----------------------------------|--------|
| 40013/40125/40164 appid, secret or IP refused | `unavailable` + operator log line | 502    |
| 40001/40014/42001 at `sns/userinfo`           | `authorisation_expired`, restart  | 400    |
| 40029/40163 code, 40226 high-risk user …      | as `errors.oauth_error_for`       | 400    |
| busy, rate limited, unreachable               | `temporarily_unavailable`         | 503    |

A configuration fault is no "please try again": the same request fails until an operator acts,
and the IdP is a gateway that got an answer it cannot use (RFC 9110 §15.6.3, 502). An expired
user access token is not WeChat being away either: the code behind it is spent, so only a new
authorisation helps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from idp.wechat import errors as wechat
from idp.wechat_login.errors import oauth_error_for

logger = logging.getLogger("idp.wechat_login")


@dataclass(frozen=True)
class CallbackPage:
    kind: str
    status: int


def page_for(error: wechat.WeChatError, appid: str) -> CallbackPage:
    """The page for a WeChat error at a sign-in callback; logs what an operator must know."""
    if isinstance(error, wechat.InvalidAccessToken):
        logger.warning(
            "WeChat refused the user access token of app %s at sns/userinfo (errcode %s):"
            " the person is asked to start the sign-in again",
            appid,
            error.errcode,
        )
        return CallbackPage("authorisation_expired", 400)
    mapped = oauth_error_for(error, appid)  # logs, with the operator's line for 40013/40125
    if isinstance(error, wechat.AppMisconfigured):
        return CallbackPage("unavailable", 502)
    if mapped.status_code < 500:
        return CallbackPage(mapped.error or "server_error", 400)
    return CallbackPage(mapped.error or "server_error", mapped.status_code)
