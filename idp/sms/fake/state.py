"""The fake's memory: provider accounts (key, secret, sign names, templates), messages that were
accepted, armed failures, captcha tickets. Thread-safe; nothing is persisted."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FakeTemplate:
    """An approved template as the providers know it: for mainland China or for international
    numbers (国际/港澳台: +852, +853, …), with the variables it declares, in order."""

    id: str
    region: str = "mainland"  # or "international"
    variables: tuple[str, ...] = ("code",)

    @classmethod
    def from_json(cls, value: Any) -> FakeTemplate:
        """`"SMS_1"` (mainland, variable `code`) or `{"id", "region", "variables"}`."""
        if isinstance(value, str):
            return cls(value)
        region = str(value.get("region", "mainland"))
        if region not in ("mainland", "international"):
            raise ValueError("region must be mainland or international")
        return cls(str(value["id"]), region,
                   tuple(str(v) for v in value.get("variables", ["code"])))


@dataclass
class FakeSmsAccount:
    provider: str  # "aliyun", "tencent" or "captcha"
    key_id: str
    key_secret: str
    sign_names: list[str] = field(default_factory=list)
    templates: list[FakeTemplate] = field(default_factory=list)
    app_id: str = ""  # Tencent SmsSdkAppId, or the CaptchaAppId
    app_secret_key: str = ""  # Tencent Captcha AppSecretKey

    def template(self, template_id: Any) -> FakeTemplate | None:
        return next((t for t in self.templates if t.id == template_id), None)


@dataclass
class FakeMessage:
    provider: str
    phone: str  # E.164
    sign_name: str
    template: str
    params: list[str]
    code: str
    message_id: str
    at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "phone": self.phone, "sign_name": self.sign_name,
            "template": self.template, "params": self.params, "code": self.code,
            "message_id": self.message_id, "at": self.at,
        }


@dataclass
class Failure:
    """What the next call to `provider` answers instead of the real thing."""

    code: str = ""  # a provider error code, answered the provider's way
    delay: float = 0.0  # seconds to wait first (alone: answer normally, but late)
    garbage: bool = False  # HTTP 200 with a body that is not the provider's JSON
    status: int = 0  # an HTTP status with an HTML page (e.g. 502 from a gateway)


class FakeSmsState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accounts: dict[tuple[str, str], FakeSmsAccount] = {}
        self.messages: list[FakeMessage] = []
        self.failures: dict[str, list[Failure]] = {}
        self.tickets: dict[str, tuple[str, int]] = {}  # ticket → (randstr, CaptchaCode)
        self.nonces: set[str] = set()
        self.rejected: list[dict[str, str]] = []
        self.clock_offset = 0.0

    def now(self) -> float:
        return time.time() + self.clock_offset

    def add_account(self, account: FakeSmsAccount) -> None:
        with self._lock:
            self.accounts[(account.provider, account.key_id)] = account

    def account(self, provider: str, key_id: str) -> FakeSmsAccount | None:
        with self._lock:
            return self.accounts.get((provider, key_id))

    def arm(self, provider: str, failure: Failure, times: int = 1) -> None:
        with self._lock:
            self.failures.setdefault(provider, []).extend([failure] * times)

    def take_failure(self, provider: str) -> Failure | None:
        with self._lock:
            queue = self.failures.get(provider) or []
            return queue.pop(0) if queue else None

    def use_nonce(self, nonce: str) -> bool:
        with self._lock:
            if nonce in self.nonces:
                return False
            self.nonces.add(nonce)
            return True

    def record(self, message: FakeMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def record_rejection(self, provider: str, code: str) -> None:
        with self._lock:
            self.rejected.append({"provider": provider, "code": code})

    def sent(self, phone: str | None = None) -> list[FakeMessage]:
        with self._lock:
            return [m for m in self.messages if phone is None or m.phone == phone]

    def add_ticket(self, ticket: str, randstr: str, captcha_code: int) -> None:
        with self._lock:
            self.tickets[ticket] = (randstr, captcha_code)

    def take_ticket(self, ticket: str) -> tuple[str, int] | None:
        with self._lock:
            return self.tickets.pop(ticket, None)  # single use, as the real tickets

    def reset(self) -> None:
        with self._lock:
            self.accounts.clear()
            self.messages.clear()
            self.failures.clear()
            self.tickets.clear()
            self.nonces.clear()
            self.rejected.clear()
            self.clock_offset = 0.0
