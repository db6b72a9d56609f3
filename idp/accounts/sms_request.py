"""Asking for a code: every defence in front of the provider, in order.

1. the number's country calling code is allowed (`IDP_SMS_ALLOWED_COUNTRY_CODES`, default +86);
2. the captcha, when the limits see risk (many sends from this address or its block), or always
   (`IDP_CAPTCHA_MODE`), with a captcha provider configured;
3. the limits (moving windows in the store every process shares): per phone (60 s, 5 an hour,
   10 a day), per address, per address block, and the hourly spend circuit-breaker of the whole
   IdP (`IDP_SMS_HOURLY_BUDGET`); every refusal says when to try again;
4. the provider; its refusals map to what the user reads.

Views call `request_code` and show `CodeRefused.message`; nothing here renders a page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import phonenumbers
from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext

from idp.accounts import sms_codes
from idp.security import throttle
from idp.security.throttle import Throttle, Throttled
from idp.sms.captcha import CaptchaAnswer, CaptchaUnavailable
from idp.sms.errors import SmsError, SmsErrorKind

log = logging.getLogger(__name__)

# Sends from one address (in an hour) or its block after which the captcha is asked for.
RISKY_SENDS_PER_ADDRESS = 3
RISKY_SENDS_PER_BLOCK = 10


@dataclass
class CodeRefused(Exception):
    message: str
    status: int = 429
    retry_after: int | None = None
    captcha_required: bool = False


def spend_breaker() -> Throttle:
    budget = int(current_app.config["IDP_SMS_HOURLY_BUDGET"])
    return Throttle("sms-global", (f"{budget}/hour",), moving=True)


def captcha_needed(address: str) -> bool:
    provider = sms_codes.captcha()
    if provider.provider == "none":
        return False
    if current_app.config["IDP_CAPTCHA_MODE"] == "always":
        return True
    return (
        throttle.sms_by_address.used(address) >= RISKY_SENDS_PER_ADDRESS
        or throttle.sms_by_address_block.used(throttle.address_block(address))
        >= RISKY_SENDS_PER_BLOCK
    )


def request_code(
    phone: str, purpose: str, answer: CaptchaAnswer | None, *, signed_in: bool = False
) -> None:
    """Raises CodeRefused, or returns once the provider accepted the code. A signed-in user
    (adding a phone to their account) is not asked for the captcha; the limits still count."""
    _check_country(phone)
    address = throttle.client_address()
    if not signed_in and captcha_needed(address):
        _check_captcha(answer, address)
    tiers = [
        (throttle.sms_by_phone, phone),
        (throttle.sms_by_address, address),
        (throttle.sms_by_address_block, throttle.address_block(address)),
        (spend_breaker(), "all"),
    ]
    try:
        for tier, key in tiers:
            tier.check(key)
        for tier, key in tiers:
            tier.acquire(key)
    except Throttled as refused:
        raise CodeRefused(wait_message(refused.retry_after), 429, refused.retry_after) from None
    try:
        sms_codes.send_code(phone, purpose, sms_codes.browser_binding())
    except SmsError as error:
        raise _refusal_for(error) from None


def wait_message(seconds: int) -> str:
    if seconds <= 120:
        return ngettext(
            "Please wait %(num)d second before asking for another code.",
            "Please wait %(num)d seconds before asking for another code.",
            seconds,
        )
    minutes = -(-seconds // 60)
    if minutes <= 120:
        return ngettext(
            "Please wait %(num)d minute before asking for another code.",
            "Please wait %(num)d minutes before asking for another code.",
            minutes,
        )
    return ngettext(
        "Too many codes for this number or network. Try again in %(num)d hour.",
        "Too many codes for this number or network. Try again in %(num)d hours.",
        -(-minutes // 60),
    )


def _check_country(phone: str) -> None:
    try:
        country = phonenumbers.parse(phone).country_code
    except phonenumbers.NumberParseException:
        country = None
    allowed = sms_codes.allowed_countries()
    if country not in allowed:
        listed = ", ".join(f"+{code}" for code in sorted(allowed))
        raise CodeRefused(
            _("Codes can only be sent to numbers with these country codes: %(codes)s.",
              codes=listed),
            400,
        )


def _check_captcha(answer: CaptchaAnswer | None, address: str) -> None:
    if answer is None or not answer.ticket:
        # Not an error: one more step on the same form.
        raise CodeRefused(
            _("Please complete the verification before we send a code."), 200,
            captcha_required=True,
        )
    try:
        passed = sms_codes.captcha().verify(CaptchaAnswer(answer.ticket, answer.randstr, address))
    except CaptchaUnavailable as error:
        log.warning("captcha service unavailable: %s", error)
        raise CodeRefused(
            _("The verification service is not answering. Please try again in a minute."), 503,
            retry_after=60, captcha_required=True,
        ) from None
    if not passed:
        raise CodeRefused(
            _("The verification did not pass. Please try again."), 400, captcha_required=True
        )


def _refusal_for(error: SmsError) -> CodeRefused:
    daily = "day" in error.code.lower() or "daily" in error.code.lower()
    if error.kind is SmsErrorKind.PHONE_LIMIT and daily:
        return CodeRefused(
            _("Too many codes for this number today. Please try again tomorrow, or sign in "
              "with your password."),
            429,
            retry_after=3600,
        )
    if error.kind is SmsErrorKind.PHONE_LIMIT:
        return CodeRefused(
            _("Too many codes for this number. Please try again in an hour."), 429, 3600
        )
    if error.kind is SmsErrorKind.INVALID_PHONE:
        return CodeRefused(_("This is not a mobile number that can receive SMS."), 400)
    return CodeRefused(
        _("We cannot send SMS right now. Please try again in a few minutes, or sign in with "
          "your password."),
        503,
        retry_after=300,
    )
