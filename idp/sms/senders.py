"""The senders: one class per provider, built from settings, no Flask globals inside.

Each adapter turns (phone, purpose, code, minutes) into the provider's call with the purpose's
approved template for the number's region (mainland China or international, idp/sms/regions.py)
and exactly the variables that template declares (`IDP_SMS_TEMPLATE_*`, default: the code
alone), and turns the answer into a `Delivery` or an `SmsError`. A timeout, a refused
connection, a 5xx or a body that is not the provider's JSON is `UNAVAILABLE`: the code is then
never stored (idp/accounts/sms_codes.py stores it only after `send` returned).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from idp.sms.errors import ALIYUN_CODES, TENCENT_CODES, SmsError, SmsErrorKind, kind_of
from idp.sms.purposes import Purpose
from idp.sms.settings import SmsSettings
from idp.sms.signing import TC3_CONTENT_TYPE, aliyun_signature, tc3_authorization
from idp.sms.texts import render_text

ResultObserver = Callable[[str, str, float], None]  # provider, result code, seconds


@dataclass(frozen=True)
class Delivery:
    provider: str
    message_id: str  # BizId (Aliyun) or SerialNo (Tencent): what support asks for
    request_id: str


class SmsSender(Protocol):
    provider: str

    def send(
        self, phone: str, purpose: Purpose, code: str, minutes: int, locale: str = "zh_CN"
    ) -> Delivery: ...


# --- development ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    phone: str
    purpose: str
    text: str
    code: str


@dataclass
class LogSender:
    """Development only (`IDP_SMS_PROVIDER=log`, accepted on a loopback issuer only): renders the
    purpose's text in the user's language, keeps it for tests, and prints it to the console —
    never to the structured log."""

    echo: bool = True
    provider: str = "log"
    outbox: list[SentMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(
        self, phone: str, purpose: Purpose, code: str, minutes: int, locale: str = "zh_CN"
    ) -> Delivery:
        text = render_text(purpose, code, minutes, locale)
        with self._lock:
            self.outbox.append(SentMessage(phone, purpose.value, text, code))
        if self.echo:
            print(f"[sms, development only] to {phone}: {text}", file=sys.stderr, flush=True)
        return Delivery("log", uuid.uuid4().hex, "")

    def last_code(self, phone: str) -> str | None:
        with self._lock:
            for message in reversed(self.outbox):
                if message.phone == phone:
                    return message.code
        return None


# --- providers --------------------------------------------------------------------------------


class _HttpSender:
    provider = ""

    def __init__(self, settings: SmsSettings, observe: ResultObserver | None = None) -> None:
        self.settings = settings
        self.http = requests.Session()
        self.observe = observe

    def _finish(self, started: float, code: str) -> None:
        if self.observe is not None:
            self.observe(self.provider, code, time.monotonic() - started)

    def _unavailable(self, started: float, code: str, detail: str) -> SmsError:
        self._finish(started, code)
        return SmsError(self.provider, code, SmsErrorKind.UNAVAILABLE, detail)

    def _request(self, started: float, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.request(
                method, url, timeout=self.settings.timeout_seconds, **kwargs
            )
        except requests.Timeout:
            raise self._unavailable(started, "timeout", "no answer in time") from None
        except requests.RequestException as error:
            raise self._unavailable(started, "unreachable", type(error).__name__) from None
        if response.status_code >= 500:
            raise self._unavailable(started, f"http_{response.status_code}", "server error")
        try:
            body = response.json()
        except ValueError:
            raise self._unavailable(started, "garbage", "answer is not JSON") from None
        if not isinstance(body, dict):
            raise self._unavailable(started, "garbage", "answer is not a JSON object")
        return body


class AliyunSender(_HttpSender):
    """dysmsapi 2017-05-25 `SendSms` with the RPC signature v1 (HMAC-SHA1), parameters in the
    query of a POST, as the provider's own SDK sends them."""

    provider = "aliyun"

    def send(
        self, phone: str, purpose: Purpose, code: str, minutes: int, locale: str = "zh_CN"
    ) -> Delivery:
        settings = self.settings
        template = settings.template_for(purpose, phone)
        params = {
            "AccessKeyId": settings.key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": settings.region or "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
            # Mainland numbers without +86, others with their country code (Aliyun's rule).
            "PhoneNumbers": phone[3:] if phone.startswith("+86") else phone.lstrip("+"),
            "SignName": settings.sign_name,
            "TemplateCode": template.id,
            "TemplateParam": json.dumps(
                dict(template.values(code, minutes)), separators=(",", ":")
            ),
        }
        params["Signature"] = aliyun_signature("POST", params, settings.key_secret)
        started = time.monotonic()
        body = self._request(started, "POST", settings.api_base.rstrip("/") + "/", params=params)
        answer = str(body.get("Code") or "")
        if not answer:
            raise self._unavailable(started, "garbage", "answer has no Code")
        self._finish(started, answer)
        if answer != "OK":
            raise SmsError(
                self.provider, answer, kind_of(ALIYUN_CODES, answer), str(body.get("Message", ""))
            )
        return Delivery(self.provider, str(body.get("BizId", "")), str(body.get("RequestId", "")))


class TencentSender(_HttpSender):
    """Tencent Cloud SMS 2021-01-11 `SendSms`, signed with TC3-HMAC-SHA256. The request can
    succeed while the number fails: the per-number `SendStatusSet[].Code` decides."""

    provider = "tencent"
    service = "sms"

    def send(
        self, phone: str, purpose: Purpose, code: str, minutes: int, locale: str = "zh_CN"
    ) -> Delivery:
        settings = self.settings
        template = settings.template_for(purpose, phone)
        payload = json.dumps({
            "PhoneNumberSet": [phone],
            "SmsSdkAppId": settings.app_id,
            "SignName": settings.sign_name,
            "TemplateId": template.id,
            "TemplateParamSet": [value for _variable, value in template.values(code, minutes)],
        }, separators=(",", ":")).encode()
        body, started = self._post(payload, "SendSms", "2021-01-11")
        response = body.get("Response")
        if not isinstance(response, dict):
            raise self._unavailable(started, "garbage", "answer has no Response")
        error = response.get("Error")
        if isinstance(error, dict):
            answer = str(error.get("Code") or "garbage")
            self._finish(started, answer)
            raise SmsError(
                self.provider, answer, kind_of(TENCENT_CODES, answer), str(error.get("Message", ""))
            )
        statuses = response.get("SendStatusSet")
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
            raise self._unavailable(started, "garbage", "answer has no SendStatusSet")
        status = statuses[0]
        answer = str(status.get("Code") or "garbage")
        self._finish(started, answer)
        if answer != "Ok":
            raise SmsError(
                self.provider,
                answer,
                kind_of(TENCENT_CODES, answer),
                str(status.get("Message", "")),
            )
        return Delivery(
            self.provider, str(status.get("SerialNo", "")), str(response.get("RequestId", ""))
        )

    def _post(self, payload: bytes, action: str, version: str) -> tuple[dict[str, Any], float]:
        settings = self.settings
        host = urlsplit(settings.api_base).netloc
        timestamp = int(time.time())
        headers = {
            "Authorization": tc3_authorization(
                settings.key_id, settings.key_secret, self.service, host, timestamp, payload
            ),
            "Content-Type": TC3_CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": action,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": version,
            "X-TC-Region": settings.region or "ap-guangzhou",
        }
        started = time.monotonic()
        body = self._request(
            started, "POST", settings.api_base.rstrip("/") + "/", data=payload, headers=headers
        )
        return body, started


def build_sender(settings: SmsSettings, echo: bool, observe: ResultObserver | None) -> SmsSender:
    if settings.provider == "aliyun":
        return AliyunSender(settings, observe)
    if settings.provider == "tencent":
        return TencentSender(settings, observe)
    return LogSender(echo=echo)
