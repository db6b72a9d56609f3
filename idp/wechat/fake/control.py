"""The control API under /__fake__/: what tests use to script the fake WeChat.

Documented for integrators in README.md next to this file.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any, TypeVar

from flask import Blueprint, Response, jsonify, request

from idp.wechat.fake.api import fake_state
from idp.wechat.fake.state import Failure, FakeApp

CONTROL_PREFIX = "/__fake__"
HTML_BODY = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
TRUNCATED_BODY = '{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"138'

bp = Blueprint("fake_wechat_control", __name__, url_prefix=CONTROL_PREFIX)
T = TypeVar("T")


class ControlInputError(Exception):
    pass


@bp.errorhandler(ControlInputError)
def _bad_input(error: ControlInputError) -> tuple[Response, int]:
    return jsonify(error=str(error)), 400


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ControlInputError("send a JSON object")
    return body


def _get(body: dict[str, Any], key: str, kind: type[T], default: Any = ...) -> T:
    if key not in body or body[key] is None:
        if default is ...:
            raise ControlInputError(f"{key} is required")
        return default
    value: T = body[key]
    # bool is an int in Python; a JSON true is never a valid number here.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ControlInputError(f"{key} must be {kind.__name__}")
    return value


def _number(body: dict[str, Any], key: str, default: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlInputError(f"{key} must be a number")
    return float(value)


@bp.post("/apps")
def register_app() -> tuple[Response, int]:
    body = _body()
    app = FakeApp(
        appid=_get(body, "appid", str),
        secret=_get(body, "secret", str),
        kind=_get(body, "kind", str, "miniprogram"),
        unionid_bound=_get(body, "unionid_bound", bool, True),
    )
    try:
        fake_state().register_app(app)
    except ValueError as error:
        raise ControlInputError(str(error)) from None
    return jsonify(appid=app.appid), 201


def _user_from(body: dict[str, Any]) -> Any:
    profile = {
        key: _get(body, key, str) for key in ("nickname", "headimgurl") if body.get(key) is not None
    }
    return fake_state().make_user(
        _known_appid(body),
        user=_get(body, "user", str, None),
        openid=_get(body, "openid", str, None),
        unionid=_get(body, "unionid", str, None),
        is_snapshotuser=_get(body, "is_snapshotuser", bool, False),
        **profile,
    )


def _known_appid(body: dict[str, Any]) -> str:
    appid = _get(body, "appid", str)
    if not fake_state().has_app(appid):
        raise ControlInputError(f"register app {appid} first")
    return appid


@bp.post("/js_codes")
def issue_js_code() -> tuple[Response, int]:
    body = _body()
    user = _user_from(body)
    session_key = (
        _get(body, "session_key", str, None) or base64.b64encode(secrets.token_bytes(16)).decode()
    )
    session: dict[str, Any] = {"openid": user.openid, "session_key": session_key}
    if user.unionid:
        session["unionid"] = user.unionid
    code = fake_state().issue_code("js", _known_appid(body), session)
    return jsonify(code=code, **session), 201


@bp.post("/phone_codes")
def issue_phone_code() -> tuple[Response, int]:
    body = _body()
    appid = _known_appid(body)
    pure = _get(body, "phone", str)
    country_code = _get(body, "country_code", str, "86")
    as_number = _get(body, "country_code_as_number", bool, False)
    phone_info = {
        # WeChat prefixes foreign numbers with their country code in phoneNumber only.
        "phoneNumber": pure if country_code == "86" else f"+{country_code}{pure}",
        "purePhoneNumber": pure,
        "countryCode": int(country_code) if as_number else country_code,
        "watermark": {
            "timestamp": int(fake_state().now()),
            "appid": _get(body, "watermark_appid", str, appid),
        },
    }
    return jsonify(code=fake_state().issue_code("phone", appid, phone_info)), 201


@bp.post("/qr_users")
def queue_qr_user() -> tuple[Response, int]:
    body = _body()
    appid = _known_appid(body)
    if _get(body, "refuse", bool, False):
        fake_state().queue_qr_user(appid, None)
        return jsonify(refuse=True), 201
    user = _user_from(body)
    fake_state().queue_qr_user(appid, user)
    return jsonify(openid=user.openid, unionid=user.unionid), 201


@bp.post("/browser_users")
def set_browser_user() -> tuple[Response, int]:
    """Who is signed in to WeChat on the phone whose browser opens an Official Account page;
    `is_snapshotuser: true` plays a snapshot (preview) page. Sticky until changed or reset."""
    body = _body()
    appid = _known_appid(body)
    user = _user_from(body)
    fake_state().set_browser_user(appid, user)
    return jsonify(openid=user.openid, unionid=user.unionid), 201


@bp.get("/wxacodes")
def list_wxacodes() -> Response:
    """The mini-program codes drawn so far, newest last: what a phone's camera would read."""
    return jsonify(wxacodes=fake_state().wxacodes())


@bp.post("/failures")
def arm_failure() -> tuple[Response, int]:
    body = _body()
    path = _get(body, "path", str)
    failure = Failure(
        errcode=_get(body, "errcode", int, None),
        delay=_number(body, "delay", 0.0),
        times=_get(body, "times", int, 1),
        status=_get(body, "status", int, 200),
        body=_get(body, "body", str, None),
        content_type=_get(body, "content_type", str, "text/plain"),
    )
    if _get(body, "html", bool, False) or failure.status != 200:
        failure.body, failure.content_type = HTML_BODY, "text/html"
    if _get(body, "truncated", bool, False):
        failure.body = TRUNCATED_BODY
    fake_state().arm_failure(path, failure)
    return jsonify(path=path, times=failure.times), 201


@bp.get("/calls")
def list_calls() -> Response:
    return jsonify(calls=fake_state().calls(request.args.get("path")))


@bp.delete("/calls")
def clear_calls() -> tuple[str, int]:
    fake_state().clear_calls()
    return "", 204


@bp.post("/clock")
def advance_clock() -> Response:
    offset = fake_state().advance_clock(_number(_body(), "advance", 0.0))
    return jsonify(offset=offset)


@bp.post("/reset")
def reset() -> tuple[str, int]:
    fake_state().reset()
    return "", 204
