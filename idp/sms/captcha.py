"""The captcha step before a code is sent: `NoCaptcha` (the default) or Tencent Captcha, whose
ticket the server checks with `DescribeCaptchaResult` (API 2019-07-22, TC3-HMAC-SHA256).

The accounts domain asks for the step only when the limits see risk, or always
(`IDP_CAPTCHA_MODE`). A captcha service that does not answer fails closed: no code is sent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import requests

from idp.sms.settings import CaptchaSettings
from idp.sms.signing import TC3_CONTENT_TYPE, tc3_authorization

SLIDER = 9  # CaptchaType: the only type DescribeCaptchaResult accepts


class CaptchaUnavailable(Exception):
    """The captcha service gave no usable answer."""


@dataclass(frozen=True)
class CaptchaAnswer:
    ticket: str
    randstr: str
    user_ip: str


class Captcha(Protocol):
    provider: str
    app_id: int

    def verify(self, answer: CaptchaAnswer) -> bool: ...


class NoCaptcha:
    provider = "none"
    app_id = 0

    def verify(self, answer: CaptchaAnswer) -> bool:
        return True


class TencentCaptcha:
    provider = "tencent"

    def __init__(self, settings: CaptchaSettings) -> None:
        self.settings = settings
        self.app_id = settings.app_id
        self.http = requests.Session()

    def verify(self, answer: CaptchaAnswer) -> bool:
        """CaptchaCode 1 is a pass; every other code (expired, reused, forged ticket) is not."""
        if not answer.ticket or not answer.randstr:
            return False
        settings = self.settings
        payload = json.dumps({
            "CaptchaType": SLIDER,
            "Ticket": answer.ticket[:2048],
            "UserIp": answer.user_ip,
            "Randstr": answer.randstr[:128],
            "CaptchaAppId": settings.app_id,
            "AppSecretKey": settings.app_secret_key,
        }, separators=(",", ":")).encode()
        host = urlsplit(settings.api_base).netloc
        timestamp = int(time.time())
        headers = {
            "Authorization": tc3_authorization(
                settings.key_id, settings.key_secret, "captcha", host, timestamp, payload
            ),
            "Content-Type": TC3_CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": "DescribeCaptchaResult",
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": "2019-07-22",
        }
        try:
            response = self.http.post(
                settings.api_base.rstrip("/") + "/", data=payload, headers=headers,
                timeout=settings.timeout_seconds,
            )
            body = response.json()
        except (requests.RequestException, ValueError) as error:
            raise CaptchaUnavailable(type(error).__name__) from None
        result = body.get("Response") if isinstance(body, dict) else None
        if not isinstance(result, dict):
            raise CaptchaUnavailable("answer has no Response")
        if isinstance(result.get("Error"), dict):
            raise CaptchaUnavailable(str(result["Error"].get("Code")))
        return result.get("CaptchaCode") == 1


def build_captcha(settings: CaptchaSettings) -> Captcha:
    return TencentCaptcha(settings) if settings.provider == "tencent" else NoCaptcha()
