"""One-time SMS codes: issued through the configured provider (idp/sms), checked here.

- A code is stored only once the provider accepted the message: a refused or failed send leaves
  no live code behind (and the earlier code, if any, keeps working).
- Codes are 6 digits, single use, die after MAX_ATTEMPTS wrong guesses, and are bound to the
  phone, the purpose and the browser that asked (a random value in its signed session cookie).
- Stored keyed: HMAC-SHA256 under a key derived from `IDP_SECRET_KEY`, so a database dump alone
  does not reveal live codes (a plain hash of a 6-digit code is reversed in milliseconds).
- Development (`IDP_SMS_PROVIDER=log`): the code is printed to the console, and only when the
  issuer is a loopback URL; never to the structured log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import Flask, current_app, has_request_context, session
from flask_babel import get_locale
from prometheus_client import Counter, Histogram
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from idp.accounts.models import SmsCode
from idp.config import is_loopback_host
from idp.extensions import db, rows_matched
from idp.models_base import utcnow
from idp.sms.captcha import Captcha, build_captcha
from idp.sms.errors import SmsError
from idp.sms.purposes import Purpose, parse_purpose
from idp.sms.senders import Delivery, SmsSender, build_sender
from idp.sms.settings import CaptchaSettings, SmsSettings, allowed_country_codes

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BROWSER_KEY = "sms_browser"

sms_sends = Counter(
    "idp_sms_sends",
    "SMS send attempts, by provider and the provider's answer (OK/Ok, an error code, timeout …)",
    ["provider", "result"],
)
sms_latency = Histogram(
    "idp_sms_send_duration_seconds", "SMS provider latency", ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def init_app(app: Flask) -> None:
    """Reads and checks the SMS and captcha settings: a wrong one stops the start (ConfigError)."""
    settings = SmsSettings.from_config(app.config)
    loopback = is_loopback_host(urlsplit(app.config["IDP_ISSUER"]).hostname or "")
    if settings.provider == "log" and not loopback and not app.testing:
        log.warning(
            "IDP_SMS_PROVIDER=log on a non-loopback issuer: SMS codes are neither delivered nor "
            "printed; set IDP_SMS_PROVIDER to aliyun or tencent"
        )
    echo = settings.provider == "log" and loopback and not app.testing
    app.extensions["idp_sms"] = build_sender(settings, echo=echo, observe=_observe)
    app.extensions["idp_captcha"] = build_captcha(CaptchaSettings.from_config(app.config))
    app.extensions["idp_sms_countries"] = allowed_country_codes(app.config)


def _observe(provider: str, result: str, seconds: float) -> None:
    sms_sends.labels(provider=provider, result=result).inc()
    sms_latency.labels(provider=provider).observe(seconds)


def sender() -> SmsSender:
    return current_app.extensions["idp_sms"]


def captcha() -> Captcha:
    return current_app.extensions["idp_captcha"]


def allowed_countries() -> frozenset[int]:
    return current_app.extensions["idp_sms_countries"]


def browser_binding() -> str:
    """A random value kept in this browser's signed session cookie; codes it asked for only
    work with it."""
    if BROWSER_KEY not in session:
        session[BROWSER_KEY] = secrets.token_urlsafe(16)
    return str(session[BROWSER_KEY])


def code_ttl_seconds() -> int:
    return int(current_app.config["IDP_SMS_CODE_TTL"])


def send_code(phone: str, purpose: str, binding: str | None = None) -> Delivery:
    """Send a fresh code for `phone`, then store it; earlier unused codes of that purpose die.
    `binding` None: any browser may use it (a code an admin had sent to the user).
    Raises SmsError when the provider did not accept the message: nothing is stored then."""
    kind = parse_purpose(purpose)
    code = f"{secrets.randbelow(10**6):06d}"
    ttl = code_ttl_seconds()
    locale = str(get_locale() or "zh_CN") if has_request_context() else "zh_CN"
    try:
        delivery = sender().send(phone, kind, code, max(1, ttl // 60), locale)
    except SmsError as error:
        _log_refusal(error, phone, kind)
        raise
    now = utcnow()
    db.session.execute(
        update(SmsCode)
        .where(SmsCode.phone == phone, SmsCode.purpose == kind.value, SmsCode.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    db.session.add(
        SmsCode(
            phone=phone,
            purpose=kind.value,
            code_digest=keyed_digest("code", phone, kind.value, code),
            browser_digest=keyed_digest("browser", binding) if binding else None,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    db.session.commit()
    return delivery


def check_code(phone: str, purpose: str, code: str, binding: str | None = None) -> bool:
    """Consumes the code on success; a code dies after MAX_ATTEMPTS wrong guesses. A code bound
    to a browser is refused (and counts as a wrong guess) from any other."""
    now = utcnow()
    row = db.session.scalars(
        select(SmsCode)
        .where(SmsCode.phone == phone, SmsCode.purpose == purpose, SmsCode.consumed_at.is_(None))
        .order_by(SmsCode.id.desc())
        .with_for_update()
    ).first()
    if row is None or row.expires_at <= now or row.attempts >= MAX_ATTEMPTS:
        return False
    right_code = hmac.compare_digest(
        row.code_digest, keyed_digest("code", phone, purpose, code.strip())
    )
    right_browser = row.browser_digest is None or (
        binding is not None
        and hmac.compare_digest(row.browser_digest, keyed_digest("browser", binding))
    )
    if right_code and right_browser:
        return _claim(row.id, now)
    # In SQL, not in Python: racing wrong guesses each count (SQLite has no row lock).
    db.session.execute(
        update(SmsCode).where(SmsCode.id == row.id)
        .values(attempts=SmsCode.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(SmsCode)
        .where(SmsCode.id == row.id, SmsCode.attempts >= MAX_ATTEMPTS,
               SmsCode.consumed_at.is_(None))
        .values(consumed_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return False


def _claim(code_id: int, now: datetime) -> bool:
    """Single use on both backends: the conditional UPDATE claims the code, and of requests
    racing with one code only the one whose UPDATE changed the row goes on. On PostgreSQL the
    `FOR UPDATE` read above already queues them; SQLite ignores it, so this is what stops four
    `/register/confirm` with one code from all succeeding (issue 23 item 6). A racer whose
    snapshot predates the winner's commit meets "database is locked": it lost too."""
    try:
        claimed = rows_matched(
            update(SmsCode)
            .where(SmsCode.id == code_id, SmsCode.consumed_at.is_(None))
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
    except OperationalError:
        db.session.rollback()
        return False
    return claimed == 1


def keyed_digest(*parts: str) -> str:
    """HMAC-SHA256 under a key derived from the app's secret key (issue 10, item 10)."""
    key = hashlib.sha256(
        b"idp-sms-code\x00" + str(current_app.config["SECRET_KEY"]).encode()
    ).digest()
    message = "\x00".join(parts).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def masked(phone: str) -> str:
    """`+8613800138000` → `+86138****8000`: enough for support, not a phone book."""
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****"


def _log_refusal(error: SmsError, phone: str, purpose: Purpose) -> None:
    fields = {
        "sms_provider": error.provider,
        "sms_error": error.code,
        "sms_error_kind": error.kind.value,
        "phone": masked(phone),
        "purpose": purpose.value,
    }
    if error.alert:
        # Balance, credentials, templates: no code goes out to anyone until an operator acts.
        log.error("SMS provider refused to send; operator action needed", extra=fields)
    else:
        log.warning("SMS provider refused to send", extra=fields)


__all__ = [
    "MAX_ATTEMPTS",
    "Purpose",
    "SmsError",
    "browser_binding",
    "captcha",
    "check_code",
    "init_app",
    "keyed_digest",
    "send_code",
    "sender",
]
