"""A typed Python wrapper over the fake's control API, for tests in any team."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import requests

CONTROL_TIMEOUT = (2.0, 10.0)


@dataclass(frozen=True)
class IssuedJsCode:
    code: str
    openid: str
    unionid: str | None
    session_key: str = field(repr=False)


@dataclass(frozen=True)
class FakeIdentity:
    openid: str
    unionid: str | None

    @classmethod
    def of(cls, answer: dict[str, Any]) -> FakeIdentity:
        return cls(answer["openid"], answer.get("unionid"))


class FakeUserFields(TypedDict, total=False):
    """Who the fake's next WeChat user is: a named `user` (the same name, the same openid and
    unionid) or explicit ids, with the profile WeChat would show."""

    user: str | None
    openid: str | None
    unionid: str | None
    nickname: str | None
    headimgurl: str | None
    is_snapshotuser: bool


class FakeWeChatControl:
    def __init__(self, base_url: str, session: requests.Session | None = None) -> None:
        self._base = base_url.rstrip("/") + "/__fake__"
        self._session = session or requests.Session()

    def close(self) -> None:
        self._session.close()

    def register_app(
        self, appid: str, secret: str, kind: str = "miniprogram", unionid_bound: bool = True
    ) -> None:
        self._post("/apps", appid=appid, secret=secret, kind=kind, unionid_bound=unionid_bound)

    def issue_js_code(
        self,
        appid: str,
        user: str | None = None,
        openid: str | None = None,
        unionid: str | None = None,
        session_key: str | None = None,
    ) -> IssuedJsCode:
        answer = self._post(
            "/js_codes",
            appid=appid,
            user=user,
            openid=openid,
            unionid=unionid,
            session_key=session_key,
        )
        return IssuedJsCode(
            answer["code"], answer["openid"], answer.get("unionid"), answer["session_key"]
        )

    def issue_phone_code(
        self,
        appid: str,
        phone: str,
        country_code: str = "86",
        country_code_as_number: bool = False,
        watermark_appid: str | None = None,
    ) -> str:
        answer = self._post(
            "/phone_codes",
            appid=appid,
            phone=phone,
            country_code=country_code,
            country_code_as_number=country_code_as_number,
            watermark_appid=watermark_appid,
        )
        return str(answer["code"])

    def next_qr_user(self, appid: str, **who: Unpack[FakeUserFields]) -> FakeIdentity:
        """The WeChat user the next website QR-connect scan signs in."""
        return FakeIdentity.of(self._post("/qr_users", appid=appid, **who))

    def set_browser_user(self, appid: str, **who: Unpack[FakeUserFields]) -> FakeIdentity:
        """The WeChat user whose in-WeChat browser opens the Official Account's pages."""
        return FakeIdentity.of(self._post("/browser_users", appid=appid, **who))

    def wxacodes(self) -> list[dict[str, Any]]:
        """Mini-program codes drawn by getwxacodeunlimit, newest last (scene, page, appid…)."""
        response = self._session.get(self._base + "/wxacodes", timeout=CONTROL_TIMEOUT)
        response.raise_for_status()
        codes: list[dict[str, Any]] = response.json()["wxacodes"]
        return codes

    def next_qr_refusal(self, appid: str) -> None:
        self._post("/qr_users", appid=appid, refuse=True)

    def arm_failure(
        self,
        path: str,
        *,
        errcode: int | None = None,
        status: int | None = None,
        html: bool = False,
        truncated: bool = False,
        body: str | None = None,
        content_type: str | None = None,
        delay: float | None = None,
        times: int = 1,
    ) -> None:
        self._post(
            "/failures",
            path=path,
            errcode=errcode,
            status=status,
            html=html,
            truncated=truncated,
            body=body,
            content_type=content_type,
            delay=delay,
            times=times,
        )

    def calls(self, path: str | None = None) -> list[dict[str, Any]]:
        params = {"path": path} if path else None
        response = self._session.get(self._base + "/calls", params=params, timeout=CONTROL_TIMEOUT)
        response.raise_for_status()
        calls: list[dict[str, Any]] = response.json()["calls"]
        return calls

    def clear_calls(self) -> None:
        self._session.delete(self._base + "/calls", timeout=CONTROL_TIMEOUT).raise_for_status()

    def advance_clock(self, seconds: float) -> None:
        self._post("/clock", advance=seconds)

    def reset(self) -> None:
        self._post("/reset")

    def _post(self, endpoint: str, /, **fields: Any) -> dict[str, Any]:
        payload = {key: value for key, value in fields.items() if value is not None}
        response = self._session.post(self._base + endpoint, json=payload, timeout=CONTROL_TIMEOUT)
        if response.status_code >= 400:
            raise RuntimeError(f"fake WeChat control {endpoint}: {response.text}")
        return response.json() if response.content else {}
