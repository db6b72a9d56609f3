"""The WeChat endpoints the IdP calls, answered the way the real ones answer.

Same paths, parameters and fields; errors on HTTP 200; JSON labelled text/plain where WeChat
does it; errmsg with a fresh `rid:` each time so clients cannot match on it.
"""

from __future__ import annotations

import json
import re
import secrets
from html import escape
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from idp.wechat.fake.png import qr_png
from idp.wechat.fake.state import (
    OFFICIAL_ACCOUNT_KINDS,
    PUBLISHED_PAGES,
    FakeApiError,
    FakeState,
    FakeUser,
)

bp = Blueprint("fake_wechat_api", __name__)

# sns endpoints really answer JSON as text/plain; the others as application/json.
TEXT_PLAIN_PATHS = frozenset({"/sns/jscode2session", "/sns/oauth2/access_token", "/sns/userinfo"})
OAUTH_KINDS = {"website", *OFFICIAL_ACCOUNT_KINDS}
OFFICIAL_ACCOUNT_SCOPES = frozenset({"snsapi_base", "snsapi_userinfo"})
# getwxacodeunlimit: `scene` is at most 32 of these (WeChat's documented set).
SCENE_CHARACTERS = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$&'()*+,/:;=?@-._~"
)
SCENE_MAX_LENGTH = 32
# `state` of qrconnect and oauth2/authorize: WeChat documents a-zA-Z0-9, at most 128 bytes. The
# fake refuses anything else with WeChat's error page, so a client that strays is caught here.
STATE_PATTERN = re.compile(r"[A-Za-z0-9]{0,128}")
ENV_VERSIONS = frozenset({"release", "trial", "develop"})
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
    40097: "invalid args",
    40169: "invalid length for scene, or the data is not json string",
    40226: "high risk user",
    41030: "invalid page",
    41001: "access_token missing",
    42001: "access_token expired",
    42002: "refresh_token expired",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    48001: "api unauthorized",
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
    if not _valid_state(args.get("state")):
        return _error_page()
    user = fake_state().next_qr_user(app.appid)
    query: dict[str, str] = {}
    if user is not None:
        query["code"] = fake_state().issue_code("qr", app.appid, {"user": user, "scope": scope})
    if "state" in args:
        query["state"] = args["state"]
    separator = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + separator + urlencode(query), code=302)


def _valid_state(state: str | None) -> bool:
    return state is None or STATE_PATTERN.fullmatch(state) is not None


def _error_page() -> Response:
    # WeChat shows a "参数错误" page; it never redirects a request it cannot trust.
    page = (
        "<html><body><h1>参数错误</h1>"
        "<p>invalid appid, redirect_uri, scope or state</p></body></html>"
    )
    return Response(page, status=400, content_type="text/html; charset=utf-8")


@bp.get("/sns/oauth2/access_token")
def oauth2_access_token() -> Response:
    args = request.args
    app = fake_state().authenticate(args.get("appid"), args.get("secret"), OAUTH_KINDS)
    _require_grant_type("authorization_code", args.get("grant_type"))
    grant = fake_state().consume_code("qr", args.get("code"), app.appid)
    user: FakeUser = grant["user"]
    payload: dict[str, Any] = {
        "access_token": fake_state().issue_user_token(app.appid, user, grant["scope"]),
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


# --- Official Account web authorization (网页授权), inside WeChat's browser ----------------------


@bp.get("/connect/oauth2/authorize")
def oauth2_authorize() -> BaseResponse:
    """snsapi_base answers at once; snsapi_userinfo asks the user first (once per app), except
    for a snapshot-page user, who cannot be asked and gets a virtual openid."""
    args = request.args
    if "MicroMessenger" not in request.headers.get("User-Agent", ""):
        return _page("请在微信客户端打开链接", "Open this link in WeChat.", status=200)
    try:
        app = fake_state().app(args.get("appid"))
    except FakeApiError:
        app = None
    redirect_uri = args.get("redirect_uri", "")
    scope = args.get("scope", "")
    if app is None or app.kind not in OFFICIAL_ACCOUNT_KINDS or not redirect_uri.startswith("http"):
        return _error_page()
    if args.get("response_type") != "code" or scope not in OFFICIAL_ACCOUNT_SCOPES:
        return _error_page()
    if not _valid_state(args.get("state")):
        return _error_page()
    user = fake_state().browser_user(app.appid)
    request_data = {
        "appid": app.appid,
        "user": user,
        "scope": scope,
        "redirect_uri": redirect_uri,
        "state": args.get("state"),
    }
    asks = scope == "snsapi_userinfo" and not user.is_snapshotuser
    if asks and not fake_state().has_consented(app.appid, user.openid):
        return _consent_page(fake_state().ask_consent(app.appid, request_data), app.appid)
    return _redirect_with_code(request_data)


@bp.post("/connect/oauth2/authorize/consent")
def oauth2_consent() -> BaseResponse:
    allow = request.form.get("decision") == "allow"
    request_data = fake_state().answer_consent(request.form.get("ticket"), allow)
    if request_data is None:
        return _error_page()
    if not allow:
        return _redirect_with_code(request_data, refused=True)
    return _redirect_with_code(request_data)


def _redirect_with_code(request_data: dict[str, Any], refused: bool = False) -> BaseResponse:
    query: dict[str, str] = {}
    if not refused:
        grant = {"user": request_data["user"], "scope": request_data["scope"]}
        query["code"] = fake_state().issue_code("qr", request_data["appid"], grant)
    if request_data.get("state") is not None:
        query["state"] = request_data["state"]
    redirect_uri = request_data["redirect_uri"]
    separator = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + separator + urlencode(query), code=302)


def _consent_page(ticket: str, appid: str) -> Response:
    buttons = "".join(
        f'<form method="post" action="/connect/oauth2/authorize/consent">'
        f'<input type="hidden" name="ticket" value="{ticket}">'
        f'<button type="submit" name="decision" value="{value}" id="{value}">{label}</button>'
        f"</form>"
        for value, label in (("allow", "允许"), ("deny", "拒绝"))
    )
    page = (
        '<html><head><meta charset="utf-8"><title>微信授权</title></head><body>'
        f"<h1>{escape(appid)} 申请获得以下权限</h1><p>获得你的公开信息（昵称、头像等）</p>"
        f"{buttons}</body></html>"
    )
    return Response(page, status=200, content_type="text/html; charset=utf-8")


def _page(title: str, text: str, status: int) -> Response:
    page = (
        '<html><head><meta charset="utf-8"></head>'
        f"<body><h1>{title}</h1><p>{text}</p></body></html>"
    )
    return Response(page, status=status, content_type="text/html; charset=utf-8")


# --- mini-program codes (wxacode.getUnlimited) -------------------------------------------------


@bp.post("/wxa/getwxacodeunlimit")
def getwxacodeunlimit() -> Response:
    """An image on success (here a real PNG), JSON `errcode` on failure."""
    appid = fake_state().access_token_appid(request.args.get("access_token"))
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise FakeApiError(47001)
    scene = body.get("scene")
    if not _valid_scene(scene):
        raise FakeApiError(40169)
    page = body.get("page", "pages/index/index")
    check_path = body.get("check_path", True)
    env_version = body.get("env_version", "release")
    width = body.get("width", 430)
    if not isinstance(check_path, bool) or env_version not in ENV_VERSIONS:
        raise FakeApiError(40097)
    if not isinstance(width, int) or isinstance(width, bool) or not 280 <= width <= 1280:
        raise FakeApiError(40097)
    if not isinstance(page, str) or page.startswith("/") or "?" in page:
        raise FakeApiError(41030)
    if check_path and page not in PUBLISHED_PAGES:
        raise FakeApiError(41030)
    fake_state().record_wxacode(
        appid, {"scene": scene, "page": page, "check_path": check_path, "env_version": env_version}
    )
    return Response(qr_png(str(scene), width), status=200, content_type="image/png")


def _valid_scene(scene: object) -> bool:
    return (
        isinstance(scene, str)
        and 0 < len(scene) <= SCENE_MAX_LENGTH
        and all(character in SCENE_CHARACTERS for character in scene)
    )
