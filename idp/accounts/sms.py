"""One-time SMS codes and the pluggable sender that delivers them.

A real provider is a class with one method, `send(phone, text)`, named by `IDP_SMS_SENDER`
(`module:Class`). The default `OutboxSmsSender` keeps every message in memory for tests and
prints it to the console for a developer — never to the structured log.
"""

from __future__ import annotations

import hmac
import re
import secrets
import sys
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from flask import Flask, current_app, has_request_context
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update
from werkzeug.utils import import_string

from idp.accounts.models import SmsCode
from idp.crypto import digest as token_digest
from idp.extensions import db
from idp.models_base import utcnow

MAX_ATTEMPTS = 5


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


@dataclass(frozen=True)
class SentMessage:
    phone: str
    text: str
    code: str


class OutboxSmsSender:
    def __init__(self, echo: bool = True):
        self.echo = echo
        self.outbox: list[SentMessage] = []
        self._lock = threading.Lock()

    def send(self, phone: str, text: str) -> None:
        found = re.search(r"\b(\d{6})\b", text)
        code = found.group(1) if found else ""
        with self._lock:
            self.outbox.append(SentMessage(phone, text, code))
        if self.echo:
            print(f"[sms outbox] to {phone}: {text}", file=sys.stderr, flush=True)

    def last_code(self, phone: str) -> str | None:
        with self._lock:
            for message in reversed(self.outbox):
                if message.phone == phone:
                    return message.code
        return None


def init_app(app: Flask) -> None:
    name = app.config["IDP_SMS_SENDER"]
    sender = OutboxSmsSender(echo=not app.testing) if name == "log" else import_string(name)()
    app.extensions["idp_sms"] = sender


def sender() -> SmsSender:
    return current_app.extensions["idp_sms"]


def send_code(phone: str, purpose: str) -> None:
    """Issue a fresh 6-digit code for `phone`; earlier unused codes of that purpose die."""
    now = utcnow()
    db.session.execute(
        update(SmsCode)
        .where(SmsCode.phone == phone, SmsCode.purpose == purpose, SmsCode.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    code = f"{secrets.randbelow(10**6):06d}"
    ttl = int(current_app.config["IDP_SMS_CODE_TTL"])
    db.session.add(
        SmsCode(
            phone=phone,
            purpose=purpose,
            code_digest=token_digest(f"{phone}:{purpose}:{code}"),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    db.session.commit()
    sender().send(phone, _code_text(code, ttl // 60))


def _code_text(code: str, minutes: int) -> str:
    """In the language of the page that asked for the code; English outside a request (the
    command line), where there is no page to take it from."""
    with nullcontext() if has_request_context() else force_locale("en"):
        return _(
            "Your verification code is %(code)s. It expires in %(minutes)d minutes.",
            code=code, minutes=minutes,
        )


def check_code(phone: str, purpose: str, code: str) -> bool:
    """Consumes the code on success; a code dies after MAX_ATTEMPTS wrong guesses."""
    now = utcnow()
    row = db.session.scalars(
        select(SmsCode)
        .where(SmsCode.phone == phone, SmsCode.purpose == purpose, SmsCode.consumed_at.is_(None))
        .order_by(SmsCode.id.desc())
        .with_for_update()
    ).first()
    if row is None or row.expires_at <= now or row.attempts >= MAX_ATTEMPTS:
        return False
    expected = token_digest(f"{phone}:{purpose}:{code.strip()}")
    if hmac.compare_digest(row.code_digest, expected):
        row.consumed_at = now
        db.session.flush()
        return True
    row.attempts += 1
    if row.attempts >= MAX_ATTEMPTS:
        row.consumed_at = now
    db.session.commit()
    return False
