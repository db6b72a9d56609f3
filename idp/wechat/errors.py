"""Errors of the WeChat adapter: one class per way a caller has to react.

Callers branch on the class (or `errcode`), never on `errmsg`: WeChat appends a changing
``rid: …`` to it. Messages never carry the app secret, a session_key, a code or a token.
"""

from __future__ import annotations


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode, or WeChat data failed a local check."""

    errcodes: frozenset[int] = frozenset()
    # True when the same request may succeed later: the edge maps it to 503, not 400.
    temporary: bool = False

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        return f"{type(self).__name__} (errcode {self.errcode}): {self.errmsg}"


class InvalidCode(WeChatError):
    """The js_code, phone code or QR code is unknown, expired or for another app."""

    errcodes = frozenset({40029})


class CodeAlreadyUsed(WeChatError):
    errcodes = frozenset({40163})


class HighRiskUser(WeChatError):
    """WeChat blocks this user's login (40226): do not retry."""

    errcodes = frozenset({40226})


class RateLimited(WeChatError):
    # 45011 per user and minute; 45009 the app's quota of an API (e.g. getwxacodeunlimit).
    errcodes = frozenset({45009, 45011})
    temporary = True


class SystemBusy(WeChatError):
    errcodes = frozenset({-1})
    temporary = True


class InvalidAccessToken(WeChatError):
    errcodes = frozenset({40001, 40014, 42001})


class InvalidRefreshToken(WeChatError):
    errcodes = frozenset({40030, 42002})


class AppMisconfigured(WeChatError):
    """Wrong appid, wrong secret or a caller IP outside the whitelist: an operator must act."""

    errcodes = frozenset({40013, 40125, 40164})


class MiniProgramCodeRefused(WeChatError):
    """getwxacodeunlimit refused the request: 41030 the page is not in the published
    mini-program (or has a leading slash / a query), 40169 a bad scene, 40097 bad arguments."""

    errcodes = frozenset({40097, 40169, 41030})


class ScopeNotGranted(WeChatError):
    """48001: the user's grant does not cover this API (sns/userinfo after snsapi_base)."""

    errcodes = frozenset({48001})


class UpstreamUnavailable(WeChatError):
    """No usable answer: timeout, refused connection, HTTP 5xx, a body that is not the JSON
    object we expect. `errcode` is None because WeChat never said anything we could read."""

    temporary = True

    def __init__(self, errmsg: str) -> None:
        super().__init__(None, errmsg)


class InvalidUpstreamData(WeChatError):
    """WeChat answered, but a value in its answer fails our checks (a phone number that does not
    parse, a NUL in an id): asking again gets the same answer, so this is not temporary."""

    def __init__(self, errmsg: str) -> None:
        super().__init__(None, errmsg)


class WatermarkMismatch(WeChatError):
    """Phone or encrypted data was issued to another appid: never trust it for this app."""

    def __init__(self, errmsg: str = "watermark appid does not match this app") -> None:
        super().__init__(None, errmsg)


class DecryptionFailed(WeChatError):
    def __init__(self, errmsg: str = "encryptedData could not be decrypted") -> None:
        super().__init__(None, errmsg)


_MAPPED: tuple[type[WeChatError], ...] = (
    InvalidCode,
    CodeAlreadyUsed,
    HighRiskUser,
    RateLimited,
    SystemBusy,
    InvalidAccessToken,
    InvalidRefreshToken,
    AppMisconfigured,
    MiniProgramCodeRefused,
    ScopeNotGranted,
)
_BY_ERRCODE: dict[int, type[WeChatError]] = {
    errcode: cls for cls in _MAPPED for errcode in cls.errcodes
}


def from_errcode(errcode: int, errmsg: str) -> WeChatError:
    """The exception for a WeChat errcode; unmapped codes (e.g. 47001) stay a plain WeChatError."""
    return _BY_ERRCODE.get(errcode, WeChatError)(errcode, errmsg)
