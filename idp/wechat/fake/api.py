"""The WeChat endpoints the IdP calls, answered the way the real ones answer.

Same paths, parameters and fields; errors on HTTP 200; JSON labelled text/plain where WeChat
does it; errmsg with a fresh `rid:` each time so clients cannot match on it.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from idp.wechat.fake.state import FakeApiError, FakeState, FakeUser

bp = Blueprint("fake_wechat_api", __name__)

# sns endpoints really answer JSON as text/plain; the others as application/json.
TEXT_PLAIN_PATHS = frozenset({"/sns/jscode2session", "/sns/oauth2/access_token", "/sns/userinfo"})
OAUTH_KINDS = {"website", "official_account"}
ERRMSGS = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40030: "invalid refresh_token",
    40125: "invalid appsecret",
    40163: "code been used",
    40164: "invalid ip, not in whitelist",
    40226: "high risk user",
    41001: "access_token missing",
    42001: "access_token expired",
    42002: "refresh_token expired",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
}


def fake_state() -> FakeState:
    state: FakeState = current_app.extensions["fake_wechat"]
    return state


def wechat_json(payload: dict[str, Any]) -> Response:
    content_type = "text/plain" if request.path in TEXT_PLAIN_PATHS else "application/json"
    body = json.dumps(payload, ensure_ascii=False)
    return Response(body, status=200, content_type=f"{content_type}; charset=utf-8")


def wechat_error(errcode: int) -> Response:
    rid = "-".join(secrets.token_hex(4) for _ in range(3))
    errmsg = f"{ERRMSGS.get(errcode, 'error')}, rid: {rid}"
    return wechat_json({"errcode": errcode, "errmsg": errmsg})


@bp.app_errorhandler(FakeApiError)
def _answer_api_error(error: FakeApiError) -> Response:
    return wechat_error(error.errcode)


def _require_grant_type(expected: str, given: object) -> None:
    if given != expected:
        raise FakeApiError(40002)


@bp.get("/sns/jscode2session")
def jscode2session() -> Response:
    args = request.args
    app = fake_state().authenticate(args.get("appid"), args.get("secret"), {"miniprogram"})
    _require_grant_type("authorization_code", args.get("grant_type"))
    session = fake_state().consume_code("js", args.get("js_code"), app.appid)
    # Success carries no errcode at all here.
    return wechat_json(session)


@bp.post("/cgi-bin/stable_token")
def stable_token() -> Response:
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict) or not isinstance(body.get("force_refresh", False), bool):
        raise FakeApiError(47001)
    app = fake_state().authenticate(body.get("appid"), body.get("secret"), {"miniprogram"})
    _require_grant_type("client_credential", body.get("grant_type"))
    token, expires_in = fake_state().issue_access_token(app.appid, body.get("force_refresh", False))
    return wechat_json({"access_token": token, "expires_in": expires_in})


@bp.post("/wxa/business/getuserphonenumber")
def getuserphonenumber() -> Response:
    appid = fake_state().access_token_appid(request.args.get("access_token"))
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        raise FakeApiError(47001)  # what WeChat says to a form-encoded body
    phone_info = fake_state().consume_code("phone", body["code"], appid, reuse_errcode=40029)
    return wechat_json({"errcode": 0, "errmsg": "ok", "phone_info": phone_info})


@bp.get("/connect/qrconnect")
def qrconnect() -> BaseResponse:
    """Plays the user scanning the QR code at once: the one the control API queued."""
    args = request.args
    redirect_uri = args.get("redirect_uri", "")
    try:
        app = fake_state().app(args.get("appid"))
    except FakeApiError:
        app = None
    scope = args.get("scope", "")
    if app is None or app.kind not in OAUTH_KINDS or not redirect_uri.startswith("http"):
        return _error_page()
    if args.get("response_type") != "code" or scope not in {"snsapi_login", "snsapi_userinfo"}:
        return _error_page()
    user = fake_state().next_qr_user(app.appid)
    query: dict[str, str] = {}
    if user is not None:
        query["code"] = fake_state().issue_code("qr", app.appid, {"user": user, "scope": scope})
    if "state" in args:
        query["state"] = args["state"]
    separator = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + separator + urlencode(query), code=302)


def _error_page() -> Response:
    # WeChat shows a "参数错误" page; it never redirects a request it cannot trust.
    page = "<html><body><h1>参数错误</h1><p>invalid appid, redirect_uri or scope</p></body></html>"
    return Response(page, status=400, content_type="text/html; charset=utf-8")


@bp.get("/sns/oauth2/access_token")
def oauth2_access_token() -> Response:
    args = request.args
    app = fake_state().authenticate(args.get("appid"), args.get("secret"), OAUTH_KINDS)
    _require_grant_type("authorization_code", args.get("grant_type"))
    grant = fake_state().consume_code("qr", args.get("code"), app.appid)
    user: FakeUser = grant["user"]
    payload: dict[str, Any] = {
        "access_token": fake_state().issue_user_token(app.appid, user),
        "expires_in": 7200,
        "refresh_token": secrets.token_urlsafe(32),
        "openid": user.openid,
        "scope": grant["scope"],
    }
    if user.unionid:
        payload["unionid"] = user.unionid
    if user.is_snapshotuser:
        payload["is_snapshotuser"] = 1
    return wechat_json(payload)


@bp.get("/sns/userinfo")
def userinfo() -> Response:
    user = fake_state().user_for_token(request.args.get("access_token"))
    if request.args.get("openid") != user.openid:
        raise FakeApiError(40003)
    payload: dict[str, Any] = {
        "openid": user.openid,
        "nickname": user.nickname,
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": user.headimgurl,
        "privilege": [],
    }
    if user.unionid:
        payload["unionid"] = user.unionid
    return wechat_json(payload)
