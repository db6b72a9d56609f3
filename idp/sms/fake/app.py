"""The fake providers as one Flask app. `/` answers Alibaba Cloud's RPC calls (parameters in the
query or form) and Tencent Cloud's API v3 calls (JSON body, `X-TC-Action`), the way each service
does: same fields, same error codes, same HTTP statuses, signatures checked with the secret the
account was registered with. `/__fake__/` is the control API (README.md)."""

from __future__ import annotations

import hmac
import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from idp.sms.fake.state import Failure, FakeMessage, FakeSmsAccount, FakeSmsState, FakeTemplate
from idp.sms.signing import TC3_CONTENT_TYPE, aliyun_signature, tc3_signature

MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ALIYUN_TIMESTAMP_SKEW = 15 * 60
TENCENT_TIMESTAMP_SKEW = 5 * 60

bp = Blueprint("fake_sms", __name__)
control = Blueprint("fake_sms_control", __name__, url_prefix="/__fake__")


def create_fake_sms_app(state: FakeSmsState | None = None, echo: bool = False) -> Flask:
    app = Flask(__name__)
    app.extensions["fake_sms"] = state or FakeSmsState()
    app.config["FAKE_SMS_ECHO"] = echo
    app.register_blueprint(bp)
    app.register_blueprint(control)
    return app


def fake_state() -> FakeSmsState:
    return current_app.extensions["fake_sms"]


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


@bp.route("/", methods=["GET", "POST"])
def api() -> Response:
    if request.headers.get("X-TC-Action"):
        return _tencent()
    return _aliyun()


# --- failures armed by the control API ----------------------------------------------------------


def _armed(provider: str) -> tuple[Failure | None, Response | None]:
    failure = fake_state().take_failure(provider)
    if failure is None:
        return None, None
    if failure.delay:
        time.sleep(failure.delay)
    if failure.status:
        page = f"<html><body><h1>{failure.status} Bad Gateway</h1></body></html>"
        return failure, Response(page, failure.status, content_type="text/html")
    if failure.garbage:
        return failure, Response('{"Code": "OK", "Mess', 200, content_type="application/json")
    return failure, None


# --- Alibaba Cloud: dysmsapi 2017-05-25 -----------------------------------------------------------


def _aliyun_error(code: str, message: str, status: int = 200) -> Response:
    fake_state().record_rejection("aliyun", code)
    body = {"RequestId": _request_id(), "Code": code, "Message": message}
    if status != 200:
        body["HostId"] = "dysmsapi.aliyuncs.com"
        body["Recommend"] = "https://api.aliyun.com/troubleshoot?q=" + code
    return jsonify(body), status  # type: ignore[return-value]


def _aliyun() -> Response:
    failure, canned = _armed("aliyun")
    if canned is not None:
        return canned
    params = {**request.form.to_dict(), **request.args.to_dict()}
    for name in ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "Action", "Version"):
        if not params.get(name):
            return _aliyun_error("MissingParameter", f"{name} is mandatory for this action.", 400)
    account = fake_state().account("aliyun", params["AccessKeyId"])
    if account is None:
        return _aliyun_error(
            "InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404
        )
    expected = aliyun_signature(request.method, params, account.key_secret)
    if not hmac.compare_digest(expected, params["Signature"]):
        return _aliyun_error(
            "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", 400
        )
    try:
        stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return _aliyun_error("InvalidTimeStamp.Format", "Specified time stamp is not valid.", 400)
    if abs(stamp.timestamp() - fake_state().now()) > ALIYUN_TIMESTAMP_SKEW:
        return _aliyun_error("InvalidTimeStamp.Expired", "Specified time stamp is expired.", 400)
    if not fake_state().use_nonce(params["SignatureNonce"]):
        return _aliyun_error(
            "SignatureNonceUsed", "Specified signature nonce was used already.", 400
        )
    if params["Action"] != "SendSms" or params["Version"] != "2017-05-25":
        return _aliyun_error("InvalidAction.NotFound", "Specified api is not found.", 404)
    if failure is not None and failure.code:
        return _aliyun_error(failure.code, "armed by the fake's control API")
    if params.get("SignName") not in account.sign_names:
        return _aliyun_error("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
    template = account.template(params.get("TemplateCode"))
    if template is None:
        return _aliyun_error("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
    try:
        template_params = json.loads(params.get("TemplateParam") or "{}")
    except ValueError:
        return _aliyun_error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
    if not isinstance(template_params, dict) or not all(
        isinstance(v, str) for v in template_params.values()
    ):
        return _aliyun_error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
    missing = [v for v in template.variables if v not in template_params]
    if missing:
        return _aliyun_error("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
    if set(template_params) != set(template.variables):
        # Aliyun: "请检查模板内容与模板参数是否匹配" — a variable the template does not declare.
        return _aliyun_error("isv.SMS_TEMPLATE_ILLEGAL", "请检查模板内容与模板参数是否匹配")
    phones = (params.get("PhoneNumbers") or "").split(",")
    phone, refusal = _aliyun_number(phones, template)
    if refusal is not None:
        return refusal
    message_id = f"{uuid.uuid4().int % 10**18}^0"
    _record(FakeMessage(
        provider="aliyun", phone=phone, sign_name=params["SignName"],
        template=template.id, params=[str(template_params[v]) for v in template.variables],
        code=str(template_params.get("code", "")), message_id=message_id, at=fake_state().now(),
    ))
    return jsonify({  # type: ignore[return-value]
        "Code": "OK", "Message": "OK", "BizId": message_id, "RequestId": _request_id()
    })


def _aliyun_number(phones: list[str], template: FakeTemplate) -> tuple[str, Response | None]:
    """Mainland templates take 11-digit mainland mobiles (+86 left out); international ones
    take country code + number and refuse a mainland number (isv.DOMESTIC_NUMBER_NOT_SUPPORTED).
    A mainland template has no code of its own for a +852 number: it is no number it can send
    to (isv.MOBILE_NUMBER_ILLEGAL)."""
    if len(phones) != 1:
        return "", _aliyun_error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    number = phones[0].removeprefix("+").removeprefix("00")
    domestic = MAINLAND_MOBILE.match(number) or (
        number.startswith("86") and MAINLAND_MOBILE.match(number[2:])
    )
    if template.region == "international":
        if domestic:
            return "", _aliyun_error(
                "isv.DOMESTIC_NUMBER_NOT_SUPPORTED", "国际/港澳台消息模板不支持发送境内号码"
            )
        if not E164.match("+" + number):
            return "", _aliyun_error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        return "+" + number, None
    if not MAINLAND_MOBILE.match(phones[0]):
        return "", _aliyun_error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    return "+86" + phones[0], None


# --- Tencent Cloud: API v3 (SMS 2021-01-11, Captcha 2019-07-22) ----------------------------------


AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<key_id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def _tencent_error(code: str, message: str, provider: str = "tencent") -> Response:
    fake_state().record_rejection(provider, code)
    return jsonify(  # type: ignore[return-value]
        {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": _request_id()}}
    )


def _tencent() -> Response:
    action = request.headers.get("X-TC-Action", "")
    provider = "captcha" if action == "DescribeCaptchaResult" else "tencent"
    failure, canned = _armed(provider)
    if canned is not None:
        return canned
    account, refusal = _tencent_authenticate(provider)
    if refusal is not None:
        return refusal
    assert account is not None
    armed_code = failure.code if failure is not None else ""
    if armed_code and not (action == "SendSms" and armed_code.startswith(PER_NUMBER_CODES)):
        return _tencent_error(armed_code, "armed by the fake's control API", provider)
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        return _tencent_error("InvalidParameter", "the request body is not JSON", provider)
    if not isinstance(body, dict):
        return _tencent_error("InvalidParameter", "the request body is not a JSON object", provider)
    if action == "SendSms" and request.headers.get("X-TC-Version") == "2021-01-11":
        return _tencent_send_sms(account, body, armed_code)
    if provider == "captcha" and request.headers.get("X-TC-Version") == "2019-07-22":
        return _describe_captcha_result(account, body)
    return _tencent_error("InvalidAction", f"action {action} not found", provider)


def _tencent_authenticate(provider: str) -> tuple[FakeSmsAccount | None, Response | None]:
    match = AUTHORIZATION.match(request.headers.get("Authorization", ""))
    if match is None:
        return None, _tencent_error(
            "AuthFailure.InvalidAuthorization", "bad Authorization", provider
        )
    account = fake_state().account(provider, match["key_id"])
    if account is None:
        return None, _tencent_error("AuthFailure.SecretIdNotFound", "secret id not found", provider)
    try:
        timestamp = int(request.headers.get("X-TC-Timestamp", ""))
    except ValueError:
        return None, _tencent_error("InvalidParameter", "X-TC-Timestamp", provider)
    if abs(timestamp - fake_state().now()) > TENCENT_TIMESTAMP_SKEW:
        return None, _tencent_error("AuthFailure.SignatureExpire", "signature expired", provider)
    service = "captcha" if provider == "captcha" else "sms"
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    expected = tc3_signature(
        account.key_secret, service, request.host, timestamp, request.get_data(),
        request.headers.get("Content-Type", ""),
    )
    if (
        match["service"] != service
        or match["date"] != date
        or match["signed"] != "content-type;host"
        or request.headers.get("Content-Type") != TC3_CONTENT_TYPE
        or not hmac.compare_digest(expected, match["signature"])
    ):
        return None, _tencent_error(
            "AuthFailure.SignatureFailure", "The provided credentials could not be validated.",
            provider,
        )
    return account, None


# Tencent answers these per number, inside a successful response (SendStatusSet[].Code).
PER_NUMBER_CODES = (
    "LimitExceeded.PhoneNumber",
    "InvalidParameterValue.IncorrectPhoneNumber",
    "FailedOperation.InsufficientBalanceInSmsPackage",
    "FailedOperation.PhoneNumberInBlacklist",
    "FailedOperation.ContainSensitiveWord",
    "LimitExceeded.DeliveryFrequencyLimit",
)


def _tencent_send_sms(account: FakeSmsAccount, body: dict[str, Any], armed_code: str) -> Response:
    if str(body.get("SmsSdkAppId")) != account.app_id:
        return _tencent_error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId does not exist")
    if body.get("SignName") not in account.sign_names:
        return _tencent_error(
            "FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误"
        )
    template = account.template(body.get("TemplateId"))
    if template is None:
        return _tencent_error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或不存在")
    params = body.get("TemplateParamSet") or []
    phones = body.get("PhoneNumberSet")
    if not isinstance(phones, list) or not phones or not isinstance(params, list):
        return _tencent_error("MissingParameter", "PhoneNumberSet")
    if len(params) != len(template.variables):
        return _tencent_error(
            "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
            "请求内容与审核通过的模板内容不匹配。请检查请求中模板参数的个数是否与申请的模板一致。",
        )
    mainland = [str(phone).startswith("+86") for phone in phones]
    if template.region == "mainland" and not all(mainland):
        return _tencent_error(
            "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone",
            "国内短信模板不支持发送国际/港澳台手机号。发送国际/港澳台手机号请使用国际/港澳台短信正文模板。",
        )
    if template.region == "international" and any(mainland):
        return _tencent_error(
            "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone",
            "国际/港澳台短信模板不支持发送国内手机号。发送国内手机号请使用国内短信正文模板。",
        )
    statuses = []
    for phone in phones:
        number = str(phone)
        valid = bool(E164.match(number)) and (
            not number.startswith("+86") or bool(MAINLAND_MOBILE.match(number[3:]))
        )
        code = "Ok" if valid else "InvalidParameterValue.IncorrectPhoneNumber"
        code = armed_code or code
        serial = f"{uuid.uuid4().int % 10**10}:{uuid.uuid4().hex}"
        if code == "Ok":
            _record(FakeMessage(
                provider="tencent", phone=number, sign_name=str(body["SignName"]),
                template=template.id, params=[str(p) for p in params],
                code=str(params[0]) if params else "", message_id=serial, at=fake_state().now(),
            ))
        else:
            fake_state().record_rejection("tencent", code)
        statuses.append({
            "SerialNo": serial if code == "Ok" else "",
            "PhoneNumber": number,
            "Fee": 1 if code == "Ok" else 0,
            "SessionContext": "",
            "Code": code,
            "Message": "send success" if code == "Ok" else code,
            "IsoCode": "CN" if number.startswith("+86") else "",
        })
    return jsonify(  # type: ignore[return-value]
        {"Response": {"SendStatusSet": statuses, "RequestId": _request_id()}}
    )


def _describe_captcha_result(account: FakeSmsAccount, body: dict[str, Any]) -> Response:
    if str(body.get("CaptchaAppId")) != account.app_id:
        answer = (16, "CaptchaAppId wrong format")
    elif not hmac.compare_digest(str(body.get("AppSecretKey", "")), account.app_secret_key):
        answer = (7, "AppSecretKey does not match")
    else:
        found = fake_state().take_ticket(str(body.get("Ticket", "")))
        if found is None:
            answer = (21, "ticket error")
        elif found[0] != body.get("Randstr"):
            answer = (21, "randstr does not match")
        else:
            answer = (found[1], "OK" if found[1] == 1 else "verification failed")
    return jsonify({"Response": {  # type: ignore[return-value]
        "CaptchaCode": answer[0], "CaptchaMsg": answer[1], "EvilLevel": 0,
        "GetCaptchaTime": int(fake_state().now()), "RequestId": _request_id(),
    }})


def _record(message: FakeMessage) -> None:
    fake_state().record(message)
    if current_app.config.get("FAKE_SMS_ECHO"):
        print(f"[fake sms] {message.provider} to {message.phone}: code {message.code} "
              f"(template {message.template}, params {message.params})", flush=True)


# --- the browser side of Tencent Captcha -------------------------------------------------------


CAPTCHA_SCRIPT = """// The fake stands in for TJCaptcha.js: the challenge passes at once.
window.TencentCaptcha = function (appId, callback) {
  this.show = function () {
    setTimeout(function () {
      callback({ret: 0, appid: appId, ticket: %(ticket)s, randstr: %(randstr)s});
    }, 50);
  };
};
"""


@bp.get("/TJCaptcha.js")
def captcha_script() -> Response:
    """Each load carries a fresh ticket that DescribeCaptchaResult then accepts once."""
    ticket, randstr = uuid.uuid4().hex, uuid.uuid4().hex[:8]
    fake_state().add_ticket(ticket, randstr, 1)
    script = CAPTCHA_SCRIPT % {"ticket": json.dumps(ticket), "randstr": json.dumps(randstr)}
    return Response(script, content_type="application/javascript")


# --- control API --------------------------------------------------------------------------------


def _json() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _bad(message: str) -> Response:
    return jsonify({"error": message}), 400  # type: ignore[return-value]


@control.post("/accounts")
def add_account() -> Response:
    body = _json()
    if body.get("provider") not in ("aliyun", "tencent", "captcha"):
        return _bad("provider must be aliyun, tencent or captcha")
    if not body.get("key_id") or not body.get("key_secret"):
        return _bad("key_id and key_secret are required")
    try:
        templates = [FakeTemplate.from_json(t) for t in body.get("templates", [])]
    except (AttributeError, KeyError, TypeError, ValueError):
        return _bad('templates: ids, or {"id", "region": mainland|international, "variables"}')
    fake_state().add_account(FakeSmsAccount(
        provider=body["provider"], key_id=str(body["key_id"]), key_secret=str(body["key_secret"]),
        sign_names=[str(s) for s in body.get("sign_names", [])],
        templates=templates,
        app_id=str(body.get("app_id", "")), app_secret_key=str(body.get("app_secret_key", "")),
    ))
    return jsonify({"ok": True})  # type: ignore[return-value]


@control.post("/failures")
def arm_failure() -> Response:
    body = _json()
    if body.get("provider") not in ("aliyun", "tencent", "captcha"):
        return _bad("provider must be aliyun, tencent or captcha")
    try:
        failure = Failure(
            code=str(body.get("code", "")), delay=float(body.get("delay", 0)),
            garbage=bool(body.get("garbage", False)), status=int(body.get("status", 0)),
        )
        times = int(body.get("times", 1))
    except (TypeError, ValueError):
        return _bad("delay, status and times must be numbers")
    fake_state().arm(body["provider"], failure, times)
    return jsonify({"ok": True})  # type: ignore[return-value]


@control.get("/messages")
def messages() -> Response:
    phone = request.args.get("phone")
    return jsonify([m.as_json() for m in fake_state().sent(phone)])  # type: ignore[return-value]


@control.get("/rejections")
def rejections() -> Response:
    return jsonify(list(fake_state().rejected))  # type: ignore[return-value]


@control.post("/captcha_tickets")
def captcha_ticket() -> Response:
    body = _json()
    ticket = str(body.get("ticket") or uuid.uuid4().hex)
    randstr = str(body.get("randstr") or uuid.uuid4().hex[:8])
    fake_state().add_ticket(ticket, randstr, int(body.get("captcha_code", 1)))
    return jsonify({"ticket": ticket, "randstr": randstr})  # type: ignore[return-value]


@control.post("/clock")
def clock() -> Response:
    try:
        fake_state().clock_offset += float(_json().get("advance", 0))
    except (TypeError, ValueError):
        return _bad("advance must be a number of seconds")
    return jsonify({"now": fake_state().now()})  # type: ignore[return-value]


@control.post("/reset")
def reset() -> Response:
    fake_state().reset()
    return jsonify({"ok": True})  # type: ignore[return-value]
