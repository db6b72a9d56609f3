"""The mini-program's account API: `POST /account/api/deletion` starts the same account
deletion as the account centre (PIPL art. 47; the mini-program review asks for an in-app way to
注销); `GET /account/api/data` answers the same copy of the person's data as the account
centre's download (PIPL art. 45).

The caller sends the user's access token (RFC 6750 §2.1) issued to a WeChat mini-program
client, obtained within the last IDP_REAUTH_SECONDS (the mini-program calls `wx.login` and the
token exchange right before: that is its re-authentication). An older token is refused with
`insufficient_user_authentication` (RFC 9470 §3), which tells the app to sign in again first.
Deletion's body must be `{"confirm": true}`; it answers 202 with the date of erasure.
"""

from __future__ import annotations

import json
import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import Response, current_app, request

from idp.account_centre.blueprint import bp
from idp.account_centre.my_data import attachment
from idp.account_centre.personal_data import (
    EXPORTS,
    build_export,
    export_filename,
    export_json,
    record_export,
)
from idp.extensions import csrf, db
from idp.identity.audit import Actor
from idp.identity.deletion import DeletionRefused, schedule_deletion
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.oidc.server import require_oauth
from idp.oidc.tokens import AccessToken
from idp.security.throttle import Throttled
from idp.wechat_login.errors import NotAMiniProgramClient


class InsufficientUserAuthentication(OAuth2Error):
    """RFC 9470 §3: the authentication behind the token is too old for this action."""

    error = "insufficient_user_authentication"
    status_code = 401


@bp.post("/api/deletion")
@csrf.exempt  # a bearer-token API: no cookie, so no cross-site request to forge
def api_start_deletion() -> Response:
    try:
        account = _recently_signed_in_mini_program_user("deleting the account")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise InvalidRequestError(description="send a JSON object with confirm set to true")
        due = schedule_deletion(account, Actor.user(account.id), reason="mini-program")
    except DeletionRefused as refusal:
        return _json({"error": "invalid_request", "error_description": str(refusal)}, 400)
    except OAuth2Error as error:
        return _oauth_error(error)
    return _json({"status": "scheduled", "sub": account.id,
                  "deletion_due_at": due.isoformat()}, 202)


@bp.get("/api/data")
def api_download_my_data() -> Response:
    """The person's own copy (PIPL Art. 45), the same document as the account centre's
    download: the same re-authentication rule as deletion, the same shared rate limit
    (429 `temporarily_unavailable` with `Retry-After`), audited."""
    try:
        account = _recently_signed_in_mini_program_user("downloading the data")
        EXPORTS.acquire(account.id)
    except Throttled as refused:
        return _json({"error": "temporarily_unavailable",
                      "error_description": "too many downloads; try again later"}, 429,
                     [("Retry-After", str(refused.retry_after))])
    except OAuth2Error as error:
        return _oauth_error(error)
    now = utcnow()
    body = export_json(build_export(account, now))
    record_export(account, "mini-program")
    db.session.commit()
    return attachment(body, export_filename(account, now))


def _recently_signed_in_mini_program_user(action: str) -> Account:
    """The account behind the bearer token (RFC 6750 §2.1) of a mini-program client, signed in
    within IDP_REAUTH_SECONDS (RFC 9470 §3 otherwise)."""
    token: AccessToken = require_oauth.acquire_token()
    account = token.get_user()
    if account is None:
        raise InvalidTokenError()
    client = token.get_client()
    if client is None or not getattr(client, "wechat_appid", None):
        raise NotAMiniProgramClient(description="only the mini-program may call this")
    window = int(current_app.config["IDP_REAUTH_SECONDS"])
    auth_time = token.claims.get("auth_time")
    if not isinstance(auth_time, int) or time.time() - auth_time > window:
        raise InsufficientUserAuthentication(
            description=f"sign in again (wx.login) right before {action}"
        )
    return account


def _oauth_error(error: OAuth2Error) -> Response:
    status, body, headers = error()
    return _json(dict(body), status, headers)


def _json(body: dict[str, Any], status: int, headers: Any = ()) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json")
    for name, value in headers:
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response
