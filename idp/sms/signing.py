"""Request signatures of the two providers, used by the adapters to sign and by the fakes to
check. Both are plain functions of the request, so a test can pin them to the providers'
published examples.

- Alibaba Cloud RPC signature v1 (HMAC-SHA1), as documented for dysmsapi 2017-05-25:
  StringToSign = METHOD & percent("/") & percent(canonicalized sorted query), key = secret + "&".
- Tencent Cloud API v3 (TC3-HMAC-SHA256): a canonical request over the JSON body and the signed
  headers `content-type;host`, a key derived from the secret by date, service and "tc3_request".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote


def percent_encode(text: str) -> str:
    """RFC 3986 unreserved characters stay, everything else is %XX (space is %20, never +)."""
    return quote(text, safe="-_.~")


def aliyun_string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = "&".join(
        f"{percent_encode(key)}={percent_encode(params[key])}"
        for key in sorted(params)
        if key != "Signature"
    )
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def aliyun_signature(method: str, params: dict[str, str], access_key_secret: str) -> str:
    key = f"{access_key_secret}&".encode()
    digest = hmac.new(key, aliyun_string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


TC3_ALGORITHM = "TC3-HMAC-SHA256"
TC3_CONTENT_TYPE = "application/json; charset=utf-8"


def _hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str, service: str, host: str, timestamp: int, payload: bytes,
    content_type: str = TC3_CONTENT_TYPE,
) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_request = "\n".join([
        "POST",
        "/",
        "",
        f"content-type:{content_type}\nhost:{host}\n",
        "content-type;host",
        hashlib.sha256(payload).hexdigest(),
    ])
    string_to_sign = "\n".join([
        TC3_ALGORITHM,
        str(timestamp),
        f"{date}/{service}/tc3_request",
        hashlib.sha256(canonical_request.encode()).hexdigest(),
    ])
    secret_date = _hmac_sha256(f"TC3{secret_key}".encode(), date)
    secret_service = _hmac_sha256(secret_date, service)
    secret_signing = _hmac_sha256(secret_service, "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(
    secret_id: str, secret_key: str, service: str, host: str, timestamp: int, payload: bytes
) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    signature = tc3_signature(secret_key, service, host, timestamp, payload)
    return (
        f"{TC3_ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )
