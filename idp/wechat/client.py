"""The WeChat server-API client: mini-program login, phone numbers, website QR login.

It returns normalised external identities and decides nothing; it knows nothing of OIDC.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard, TypeVar
from urllib.parse import urlencode

import phonenumbers

from idp.wechat.errors import (
    InvalidAccessToken,
    InvalidUpstreamData,
    UpstreamUnavailable,
    WatermarkMismatch,
    from_errcode,
)
from idp.wechat.token_store import AccessTokenStore
from idp.wechat.transport import CurlPool, Headers, TransportFailure

logger = logging.getLogger("idp.wechat")

DEFAULT_API_BASE = "https://api.weixin.qq.com"
# Parameters whose values must never reach a log line or an exception message.
SENSITIVE_PARAMETERS = frozenset({"secret", "js_code", "code", "access_token", "refresh_token"})
# Refresh this long before expiry, but never more than half the lifetime WeChat granted.
ACCESS_TOKEN_MARGIN = 300.0
ERRMSG_MAX_LENGTH = 200

# on_call(path, errcode or None when WeChat gave no usable answer, seconds): for metrics.
CallHook = Callable[[str, int | None, float], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MiniProgramSession:
    openid: str
    session_key: str = field(repr=False)
    unionid: str | None


@dataclass(frozen=True, slots=True)
class PhoneInfo:
    phone_number_e164: str
    pure_phone_number: str
    country_code: str
    watermark_appid: str
    watermark_timestamp: int


@dataclass(frozen=True, slots=True)
class WebAccessToken:
    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str = field(repr=False)
    openid: str
    scope: str
    unionid: str | None
    is_snapshotuser: bool


@dataclass(frozen=True, slots=True)
class WeChatProfile:
    openid: str
    nickname: str
    headimgurl: str
    unionid: str | None
    sex: int
    province: str
    city: str
    country: str


class WeChatClient:
    """One app (appid + secret) against one API base. Thread-safe; share one per appid."""

    def __init__(
        self,
        api_base: str,
        appid: str,
        secret: str,
        token_store: AccessTokenStore,
        timeout: tuple[float, float] = (3.05, 5.0),
        http: CurlPool | None = None,
        on_call: CallHook | None = None,
    ) -> None:
        self._api_base = api_base.rstrip("/")
        self._appid = appid
        self._secret = secret
        self._token_store = token_store
        self._timeout = timeout
        self._owns_http = http is None
        self._http = http if http is not None else CurlPool(api_base)
        self._on_call = on_call

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        appid: str,
        secret: str,
        token_store: AccessTokenStore,
        on_call: CallHook | None = None,
    ) -> WeChatClient:
        api_base = config.get("IDP_WECHAT_API_BASE") or DEFAULT_API_BASE
        return cls(api_base, appid, secret, token_store, on_call=on_call)

    @property
    def appid(self) -> str:
        return self._appid

    def close(self) -> None:
        """Closes the client's own connections; a shared pool (`pooled_http`) stays open."""
        if self._owns_http:
            self._http.close()

    # -- mini-program ------------------------------------------------------------------------

    def code_to_session(self, js_code: str) -> MiniProgramSession:
        """Exchange a `wx.login()` code. Never retried, not even after a timeout: WeChat
        may have burnt the code already, and a retry would only earn 40163."""
        params = {
            "appid": self._appid,
            "secret": self._secret,
            "js_code": js_code,
            "grant_type": "authorization_code",
        }
        return self._call("GET", "/sns/jscode2session", _parse_session, params=params)

    def get_phone_number(self, code: str) -> PhoneInfo:
        """The phone behind a getPhoneNumber code, in E.164, checked against our appid."""
        token = self.access_token()
        try:
            return self._post_phone_code(code, token)
        except InvalidAccessToken:
            # The token was rejected before the code was looked at, so the code is unspent.
            token = self._access_token(force=True, rejected=token)
            return self._post_phone_code(code, token)

    def _post_phone_code(self, code: str, token: str) -> PhoneInfo:
        return self._call(
            "POST",
            "/wxa/business/getuserphonenumber",
            lambda body: _parse_phone(body, self._appid),
            params={"access_token": token},
            payload={"code": code},
        )

    # -- mini-program codes ------------------------------------------------------------------

    def get_unlimited_wxacode(
        self,
        scene: str,
        page: str,
        *,
        check_path: bool = True,
        env_version: str = "release",
        width: int = 430,
    ) -> bytes:
        """wxacode.getUnlimited (`POST /wxa/getwxacodeunlimit`): the image bytes of a mini-program
        code opening `page` (no leading slash, no query) with `scene` (≤ 32 visible characters).
        Safe to retry once on a rejected access token: drawing a code spends nothing."""
        payload = {
            "scene": scene,
            "page": page,
            "check_path": check_path,
            "env_version": env_version,
            "width": width,
        }
        token = self.access_token()
        try:
            return self._post_for_image("/wxa/getwxacodeunlimit", token, payload)
        except InvalidAccessToken:
            token = self._access_token(force=True, rejected=token)
            return self._post_for_image("/wxa/getwxacodeunlimit", token, payload)

    def _post_for_image(self, path: str, token: str, payload: dict[str, Any]) -> bytes:
        """An image on success, a JSON `errcode` (HTTP 200) on failure."""
        started = time.monotonic()
        errcode: int | None = None
        params = {"access_token": token}
        try:
            status, headers, content = self._send("POST", path, params, payload)
            if status == 200 and headers.get("Content-Type", "").startswith("image/"):
                errcode = 0
                return content
            body = _json_object(status, content, path)
            errcode = _errcode(body)
            if errcode == 0:
                raise UpstreamUnavailable(f"{path}: neither an image nor an error")
            raise from_errcode(errcode, self._redact(_errmsg(body), params))
        except UpstreamUnavailable:
            errcode = None
            raise
        finally:
            self._report(path, errcode, time.monotonic() - started)

    # -- app access token --------------------------------------------------------------------

    def access_token(self, force_refresh: bool = False) -> str:
        return self._access_token(force=force_refresh)

    def _access_token(self, *, force: bool, rejected: str | None = None) -> str:
        if not force:
            cached = self._token_store.get(self._appid)
            if cached is not None:
                return cached.token
        with self._token_store.lock(self._appid):
            # Another caller may have refreshed while we waited: use its token rather than
            # spend one of the 20 forced refreshes WeChat allows per day.
            cached = self._token_store.get(self._appid)
            if cached is not None:
                refreshed_meanwhile = rejected is not None and cached.token != rejected
                if not force or refreshed_meanwhile:
                    return cached.token
            return self._fetch_access_token(force_refresh=force)

    def _fetch_access_token(self, *, force_refresh: bool) -> str:
        payload = {
            "grant_type": "client_credential",
            "appid": self._appid,
            "secret": self._secret,
            "force_refresh": force_refresh,
        }
        token, expires_in = self._call(
            "POST", "/cgi-bin/stable_token", _parse_access_token, payload=payload
        )
        margin = min(ACCESS_TOKEN_MARGIN, expires_in / 2)
        self._token_store.set(self._appid, token, time.time() + expires_in - margin)
        return token

    # -- website QR login --------------------------------------------------------------------

    def oauth2_access_token(self, code: str) -> WebAccessToken:
        params = {
            "appid": self._appid,
            "secret": self._secret,
            "code": code,
            "grant_type": "authorization_code",
        }
        return self._call("GET", "/sns/oauth2/access_token", _parse_web_token, params=params)

    def userinfo(self, access_token: str, openid: str) -> WeChatProfile:
        params = {"access_token": access_token, "openid": openid, "lang": "zh_CN"}
        return self._call("GET", "/sns/userinfo", _parse_profile, params=params)

    # -- transport ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[dict[str, Any]], T],
        *,
        params: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> T:
        started = time.monotonic()
        errcode: int | None = None
        try:
            body = self._request(method, path, params, payload)
            errcode = _errcode(body)
            if errcode != 0:
                errmsg = self._redact(_errmsg(body), params, payload)
                raise from_errcode(errcode, errmsg)
            return parse(body)
        except UpstreamUnavailable:
            errcode = None
            raise
        finally:
            self._report(path, errcode, time.monotonic() - started)

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        payload: dict[str, Any] | None,
    ) -> dict[str, Any]:
        status, _, content = self._send(method, path, params, payload)
        return _json_object(status, content, path)

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        payload: dict[str, Any] | None,
    ) -> tuple[int, Headers, bytes]:
        """One HTTP exchange on the kept-alive pool (`idp.wechat.transport`: no redirects
        followed, no request sent twice — a js_code or phone code must reach WeChat at most
        once — and no cookies kept). Any transport failure is `UpstreamUnavailable`, naming
        only the path: the query holds secrets."""
        url = self._api_base + path + ("?" + urlencode(params) if params else "")
        body = None if payload is None else json.dumps(payload).encode()
        try:
            response = self._http.request(method, url, body, self._timeout)
        except TransportFailure as failure:
            raise UpstreamUnavailable(f"{path}: {failure}") from None
        return response.status, response.headers, response.body

    def _redact(self, text: str, *parameter_sets: Mapping[str, Any] | None) -> str:
        sensitive = {self._secret}
        for parameters in parameter_sets:
            for key, value in (parameters or {}).items():
                if key in SENSITIVE_PARAMETERS and isinstance(value, str):
                    sensitive.add(value)
        for value in sensitive:
            if value:
                text = text.replace(value, "[redacted]")
        return text[:ERRMSG_MAX_LENGTH]

    def _report(self, path: str, errcode: int | None, seconds: float) -> None:
        level = logging.INFO if errcode == 0 else logging.WARNING
        logger.log(
            level,
            "wechat call path=%s appid=%s errcode=%s seconds=%.3f",
            path,
            self._appid,
            "upstream-unavailable" if errcode is None else errcode,
            seconds,
        )
        if self._on_call is None:
            return
        try:
            self._on_call(path, errcode, seconds)
        except Exception:
            # Metrics must never break a login.
            logger.warning("wechat on_call hook failed", exc_info=True)


# -- response parsing ------------------------------------------------------------------------


def _json_object(status: int, content: bytes, path: str) -> dict[str, Any]:
    if status != 200:
        raise UpstreamUnavailable(f"{path}: HTTP {status}")
    try:
        # Bytes, decoded as JSON's UTF-8: WeChat labels UTF-8 JSON text/plain with no charset.
        body = json.loads(content)
    except ValueError:
        raise UpstreamUnavailable(f"{path}: body is not JSON") from None
    if not isinstance(body, dict):
        raise UpstreamUnavailable(f"{path}: body is not a JSON object")
    return body


def _errcode(body: dict[str, Any]) -> int:
    errcode = body.get("errcode", 0)
    if not _is_int(errcode):
        raise UpstreamUnavailable("errcode is not an integer")
    return errcode


def _errmsg(body: dict[str, Any]) -> str:
    errmsg = body.get("errmsg", "")
    return errmsg if isinstance(errmsg, str) else ""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _required_str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise UpstreamUnavailable(f"field {key!r} missing or not a string")
    return _without_nul(key, value)


def _optional_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UpstreamUnavailable(f"field {key!r} is not a string")
    return _without_nul(key, value)


def _without_nul(key: str, value: str) -> str:
    """An id or a code with a NUL is refused: PostgreSQL cannot store it, and it would not be
    the id WeChat means (idp/input_guard.py guards what clients send)."""
    if "\x00" in value:
        raise InvalidUpstreamData(f"field {key!r} contains a NUL character")
    return value


def _string_or_empty(body: Mapping[str, Any], key: str) -> str:
    """Display text (nickname, city): a NUL in it is dropped, the rest is kept."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UpstreamUnavailable(f"field {key!r} is not a string")
    return value.replace("\x00", "")


def _required_int(body: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if not _is_int(value):
        raise UpstreamUnavailable(f"field {key!r} missing or not an integer")
    return value


def _required_object(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise UpstreamUnavailable(f"field {key!r} missing or not an object")
    return value


def _parse_session(body: dict[str, Any]) -> MiniProgramSession:
    return MiniProgramSession(
        openid=_required_str(body, "openid"),
        session_key=_required_str(body, "session_key"),
        unionid=_optional_str(body, "unionid"),
    )


def _parse_access_token(body: dict[str, Any]) -> tuple[str, int]:
    expires_in = _required_int(body, "expires_in")
    if expires_in <= 0:
        raise UpstreamUnavailable("expires_in is not positive")
    return _required_str(body, "access_token"), expires_in


def _parse_phone(body: dict[str, Any], expected_appid: str) -> PhoneInfo:
    phone_info = _required_object(body, "phone_info")
    watermark = _required_object(phone_info, "watermark")
    watermark_appid = _required_str(watermark, "appid")
    if watermark_appid != expected_appid:
        raise WatermarkMismatch()
    country_code = _country_code(phone_info.get("countryCode"))
    pure = _required_str(phone_info, "purePhoneNumber")
    return PhoneInfo(
        phone_number_e164=_to_e164(country_code, pure),
        pure_phone_number=pure,
        country_code=country_code,
        watermark_appid=watermark_appid,
        watermark_timestamp=_required_int(watermark, "timestamp"),
    )


def _country_code(value: object) -> str:
    # WeChat sends "86" on some app versions and 86 on others.
    text = str(value) if _is_int(value) else value
    if text is None:
        raise UpstreamUnavailable("countryCode missing")
    if not isinstance(text, str) or not text.lstrip("+").isdigit():
        raise InvalidUpstreamData("countryCode is not numeric")
    return text.lstrip("+")


def _to_e164(country_code: str, pure_phone_number: str) -> str:
    # The number itself stays out of the message: it is personal data.
    try:
        number = phonenumbers.parse(f"+{country_code}{pure_phone_number}")
    except phonenumbers.NumberParseException:
        raise InvalidUpstreamData("phone number cannot be parsed") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidUpstreamData("phone number is not a possible number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_web_token(body: dict[str, Any]) -> WebAccessToken:
    return WebAccessToken(
        access_token=_required_str(body, "access_token"),
        expires_in=_required_int(body, "expires_in"),
        refresh_token=_required_str(body, "refresh_token"),
        openid=_required_str(body, "openid"),
        scope=_string_or_empty(body, "scope"),
        unionid=_optional_str(body, "unionid"),
        is_snapshotuser=_required_int(body, "is_snapshotuser", default=0) == 1,
    )


def _parse_profile(body: dict[str, Any]) -> WeChatProfile:
    return WeChatProfile(
        openid=_required_str(body, "openid"),
        nickname=_string_or_empty(body, "nickname"),
        headimgurl=_string_or_empty(body, "headimgurl"),
        unionid=_optional_str(body, "unionid"),
        sex=_required_int(body, "sex", default=0),
        province=_string_or_empty(body, "province"),
        city=_string_or_empty(body, "city"),
        country=_string_or_empty(body, "country"),
    )


__all__ = [
    "MiniProgramSession",
    "PhoneInfo",
    "WeChatClient",
    "WeChatProfile",
    "WebAccessToken",
]
