"""In-memory state of the fake WeChat: apps, codes, tokens, armed failures and the call log.

Every method takes the one lock, so the threaded server can serve requests in parallel.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

# Lifetimes WeChat documents, in seconds.
CODE_TTL = {"js": 300, "phone": 300, "qr": 600}
ACCESS_TOKEN_TTL = 7200
# In normal stable_token mode WeChat hands out a new token in the last 5 minutes of the old one.
ACCESS_TOKEN_OVERLAP = 300
# "officialaccount" is the IdP's spelling, "official_account" the fake's first one: both work.
APP_KINDS = frozenset({"miniprogram", "website", "official_account", "officialaccount"})
OFFICIAL_ACCOUNT_KINDS = frozenset({"official_account", "officialaccount"})
# Pages of the published mini-program that `check_path` accepts (getwxacodeunlimit).
PUBLISHED_PAGES = frozenset({"pages/index/index", "pages/scan/scan"})
DEFAULT_QR_USER = "qr-demo-user"


class FakeApiError(Exception):
    """Answered as WeChat does: HTTP 200 with {"errcode", "errmsg"}."""

    def __init__(self, errcode: int) -> None:
        super().__init__(errcode)
        self.errcode = errcode


@dataclass(frozen=True)
class FakeApp:
    appid: str
    secret: str = field(repr=False)
    kind: str = "miniprogram"
    # Bound to an Open Platform account: only then does WeChat return a unionid.
    unionid_bound: bool = True


@dataclass(frozen=True)
class FakeUser:
    openid: str
    unionid: str | None
    nickname: str = "微信用户"
    headimgurl: str = ""
    is_snapshotuser: bool = False


@dataclass
class Failure:
    """What to do to the next `times` calls of a path; `errcode` or `status`/`body` or neither."""

    errcode: int | None = None
    status: int = 200
    body: str | None = None
    content_type: str = "text/plain"
    delay: float = 0.0
    times: int = 1


@dataclass
class _Code:
    kind: str
    appid: str
    expires_at: float
    data: dict[str, Any]
    used: bool = False


@dataclass
class _Token:
    appid: str
    expires_at: float
    user: FakeUser | None = None
    revoked: bool = False
    scope: str = ""


def derive_id(*parts: str) -> str:
    """A stable 28-character WeChat-looking id, so one test user keeps one openid per app."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode()[:27]


class FakeState:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._apps: dict[str, FakeApp] = {}
            self._codes: dict[str, _Code] = {}
            self._access_tokens: dict[str, _Token] = {}
            self._current_access_token: dict[str, str] = {}
            self._user_tokens: dict[str, _Token] = {}
            self._qr_queue: dict[str, deque[FakeUser | None]] = {}
            self._browser_users: dict[str, FakeUser] = {}
            self._consents: set[tuple[str, str]] = set()
            self._pending_consents: dict[str, dict[str, Any]] = {}
            self._wxacodes: list[dict[str, Any]] = []
            self._failures: dict[str, deque[Failure]] = {}
            self._calls: list[dict[str, Any]] = []
            self._clock_offset = 0.0

    # -- clock: lets tests expire codes and tokens without sleeping -----------------------------

    def now(self) -> float:
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> float:
        with self._lock:
            self._clock_offset += seconds
            return self._clock_offset

    # -- apps and users ----------------------------------------------------------------------

    def register_app(self, app: FakeApp) -> None:
        if app.kind not in APP_KINDS:
            raise ValueError(f"kind must be one of {sorted(APP_KINDS)}")
        with self._lock:
            self._apps[app.appid] = app

    def has_app(self, appid: str) -> bool:
        with self._lock:
            return appid in self._apps

    def app(self, appid: str | None) -> FakeApp:
        with self._lock:
            app = self._apps.get(appid or "")
        if app is None:
            raise FakeApiError(40013)
        return app

    def authenticate(self, appid: str | None, secret: str | None, kinds: set[str]) -> FakeApp:
        app = self.app(appid)
        if app.kind not in kinds:
            raise FakeApiError(40013)
        if not secrets.compare_digest((secret or "").encode(), app.secret.encode()):
            raise FakeApiError(40125)
        return app

    def make_user(
        self,
        appid: str,
        user: str | None = None,
        openid: str | None = None,
        unionid: str | None = None,
        **profile: Any,
    ) -> FakeUser:
        app = self.app(appid)
        name = user or openid or secrets.token_hex(6)
        if app.unionid_bound:
            unionid = unionid or derive_id("unionid", name)
        else:
            unionid = None
        return FakeUser(openid or derive_id(appid, name), unionid, **profile)

    # -- codes -------------------------------------------------------------------------------

    def issue_code(self, kind: str, appid: str, data: dict[str, Any]) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(kind, appid, self.now() + CODE_TTL[kind], data)
        return code

    def consume_code(
        self, kind: str, code: str | None, appid: str, reuse_errcode: int = 40163
    ) -> dict[str, Any]:
        with self._lock:
            issued = self._codes.get(code or "")
            if issued is None or issued.kind != kind or issued.appid != appid:
                raise FakeApiError(40029)
            if issued.used:
                raise FakeApiError(reuse_errcode)
            if issued.expires_at <= self.now():
                raise FakeApiError(40029)
            issued.used = True
            return issued.data

    # -- app access tokens (stable_token) ----------------------------------------------------

    def issue_access_token(self, appid: str, force_refresh: bool) -> tuple[str, int]:
        with self._lock:
            now = self.now()
            current = self._access_tokens.get(self._current_access_token.get(appid, ""))
            if current is not None and force_refresh:
                current.revoked = True  # forced mode invalidates the previous token at once
            elif current is not None and current.expires_at - now > ACCESS_TOKEN_OVERLAP:
                return self._current_access_token[appid], int(current.expires_at - now)
            token = secrets.token_urlsafe(32)
            self._access_tokens[token] = _Token(appid, now + ACCESS_TOKEN_TTL)
            self._current_access_token[appid] = token
            return token, ACCESS_TOKEN_TTL

    def access_token_appid(self, token: str | None) -> str:
        return self._check_token(self._access_tokens, token).appid

    # -- user tokens (website OAuth) ---------------------------------------------------------

    def issue_user_token(self, appid: str, user: FakeUser, scope: str = "") -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._user_tokens[token] = _Token(
                appid, self.now() + ACCESS_TOKEN_TTL, user, scope=scope
            )
        return token

    def user_for_token(self, token: str | None) -> FakeUser:
        record = self._check_token(self._user_tokens, token)
        assert record.user is not None
        if record.scope == "snsapi_base":
            raise FakeApiError(48001)  # a silent grant gives no profile
        return record.user

    # -- the user of WeChat's browser (Official Account web authorization) ---------------------

    def set_browser_user(self, appid: str, user: FakeUser) -> None:
        """Who is "inside WeChat" for this Official Account: sticky until changed or reset."""
        with self._lock:
            self._browser_users[appid] = user

    def browser_user(self, appid: str) -> FakeUser:
        with self._lock:
            user = self._browser_users.get(appid)
        return user or self.make_user(appid, user=DEFAULT_QR_USER)

    def has_consented(self, appid: str, openid: str) -> bool:
        with self._lock:
            return (appid, openid) in self._consents

    def ask_consent(self, appid: str, data: dict[str, Any]) -> str:
        """Parks an snsapi_userinfo request until the user taps 允许 or 拒绝 (single use)."""
        ticket = secrets.token_urlsafe(16)
        with self._lock:
            self._pending_consents[ticket] = data
        return ticket

    def answer_consent(self, ticket: str | None, allow: bool) -> dict[str, Any] | None:
        with self._lock:
            data = self._pending_consents.pop(ticket or "", None)
            if data is not None and allow:
                self._consents.add((data["appid"], data["user"].openid))
            return data

    # -- mini-program codes (wxacode.getUnlimited) ---------------------------------------------

    def record_wxacode(self, appid: str, request: dict[str, Any]) -> None:
        with self._lock:
            self._wxacodes.append({"appid": appid, **request, "time": self.now()})

    def wxacodes(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._wxacodes)

    def _check_token(self, tokens: dict[str, _Token], token: str | None) -> _Token:
        if not token:
            raise FakeApiError(41001)
        with self._lock:
            record = tokens.get(token)
            if record is None or record.revoked:
                raise FakeApiError(40001)
            if record.expires_at <= self.now():
                raise FakeApiError(42001)
            return record

    # -- QR users ----------------------------------------------------------------------------

    def queue_qr_user(self, appid: str, user: FakeUser | None) -> None:
        """`None` queues a refusal: the user declines on the phone."""
        with self._lock:
            self._qr_queue.setdefault(appid, deque()).append(user)

    def next_qr_user(self, appid: str) -> FakeUser | None:
        with self._lock:
            queue = self._qr_queue.get(appid)
            if queue:
                return queue.popleft()
        # Nothing queued: a steady demo user, so the demo logs in as the same person each time.
        return self.make_user(appid, user=DEFAULT_QR_USER)

    # -- armed failures and the call log -----------------------------------------------------

    def arm_failure(self, path: str, failure: Failure) -> None:
        with self._lock:
            self._failures.setdefault(path, deque()).append(failure)

    def take_failure(self, path: str) -> Failure | None:
        with self._lock:
            queue = self._failures.get(path)
            if not queue:
                return None
            head = queue[0]
            if head.times <= 1:
                return queue.popleft()
            head.times -= 1
            return replace(head, times=1)

    def record_call(self, call: dict[str, Any]) -> None:
        with self._lock:
            self._calls.append(call)

    def calls(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [call for call in self._calls if path is None or call["path"] == path]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()
