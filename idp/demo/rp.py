"""The demo website: a relying party that logs in through the IdP with Authlib's Flask client.

It is what a real website would write (discovery, code flow with PKCE S256 and a nonce, ID-token
validation against the JWKS, userinfo, refresh, RP-initiated logout), plus a "simulated
mini-program" page that plays the WeChat mini-program's part against the fake WeChat (CONTRACT §5
and §6), server-side so the page needs no script.

Tokens stay on the server (`TokenStore`), the browser only holds a session id: three JWTs would
not fit in a cookie.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, abort, redirect, render_template, request, session, url_for

from idp.config import RESOURCE_ROOT
from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.wechat.fake.control_client import FakeWeChatControl

JS_CODE_TOKEN_TYPE = "urn:wechat:params:oauth:token-type:js_code"
HTTP_TIMEOUT = (3.0, 15.0)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:;"
    " form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class RelyingPartySettings:
    issuer: str
    client_id: str
    client_secret: str
    url: str  # where this site is served, e.g. http://127.0.0.1:5002
    secret_key: str
    fake_wechat_url: str
    miniprogram_client_id: str
    miniprogram_appid: str
    scope: str = "openid profile phone email wechat offline_access"
    miniprogram_scope: str = "openid profile phone wechat offline_access"


class TokenStore:
    """Per-browser state of this demo, in memory (a real site would use its session store)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {}

    def get(self) -> dict[str, Any]:
        sid = session.get("rp_sid")
        with self._lock:
            if sid is None or sid not in self._data:
                sid = secrets.token_urlsafe(24)
                session["rp_sid"] = sid
                self._data[sid] = {}
            return self._data[sid]

    def clear(self) -> None:
        sid = session.pop("rp_sid", None)
        with self._lock:
            self._data.pop(sid, None)


def create_demo_rp(settings: RelyingPartySettings) -> Flask:
    app = Flask(
        "idp.demo.rp",
        template_folder=str(RESOURCE_ROOT / "templates"),
        static_folder=str(RESOURCE_ROOT / "static"),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # Cookies ignore ports: on 127.0.0.1 the IdP and this site share a cookie jar.
        SESSION_COOKIE_NAME="demo_rp_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.scope, "code_challenge_method": "S256"},
    )
    app.extensions["demo_rp"] = DemoRelyingParty(settings, oauth, TokenStore())
    _register_routes(app)
    app.after_request(_security_headers)
    return app


class DemoRelyingParty:
    """The RP's logic, kept out of the view functions."""

    def __init__(self, settings: RelyingPartySettings, oauth: OAuth, store: TokenStore) -> None:
        self.settings = settings
        self.oauth = oauth
        self.store = store

    @property
    def idp(self) -> Any:
        return self.oauth.idp  # type: ignore[attr-defined]

    def metadata(self) -> dict[str, Any]:
        return self.idp.load_server_metadata()

    # --- the website ---------------------------------------------------------------------------

    def remember_login(self, token: dict[str, Any]) -> None:
        state = self.store.get()
        state["website"] = {
            "token": _without(token, "userinfo"),
            "claims": dict(token["userinfo"]),
            "userinfo": self.idp.userinfo(token=token),
        }

    def refresh(self) -> None:
        """OIDC Core §12: a refresh may bring a new ID token; its `sub` must not change."""
        website = self.store.get()["website"]
        old = website["token"]
        token = self.idp.fetch_access_token(
            grant_type="refresh_token", refresh_token=old["refresh_token"]
        )
        if "id_token" in token:
            claims = dict(self.idp.parse_id_token(token, nonce=None))
            if claims["sub"] != website["claims"]["sub"]:
                raise OAuthError("invalid_token", "the refreshed ID token has another sub")
            website["claims"] = claims
        else:
            token["id_token"] = old.get("id_token")
        website["token"] = token
        website["userinfo"] = self.idp.userinfo(token=token)
        website["refreshed"] = website.get("refreshed", 0) + 1

    # --- the simulated mini-program --------------------------------------------------------------

    def control(self) -> FakeWeChatControl:
        return FakeWeChatControl(self.settings.fake_wechat_url)

    def wx_login(self, user: str) -> dict[str, Any]:
        """`wx.login()` in the fake, then the token exchange of CONTRACT §5."""
        control = self.control()
        try:
            js_code = control.issue_js_code(self.settings.miniprogram_appid, user=user).code
        finally:
            control.close()
        return self._token_request(
            {
                "grant_type": TOKEN_EXCHANGE,
                "client_id": self.settings.miniprogram_client_id,
                "subject_token": js_code,
                "subject_token_type": JS_CODE_TOKEN_TYPE,
                "scope": self.settings.miniprogram_scope,
            }
        )

    def mp_refresh(self, refresh_token: str) -> dict[str, Any]:
        return self._token_request(
            {
                "grant_type": "refresh_token",
                "client_id": self.settings.miniprogram_client_id,
                "refresh_token": refresh_token,
            }
        )

    def get_phone_number(self, phone: str, access_token: str) -> dict[str, Any]:
        """The getPhoneNumber button in the fake, then the phone binding of CONTRACT §6."""
        control = self.control()
        try:
            code = control.issue_phone_code(self.settings.miniprogram_appid, phone)
        finally:
            control.close()
        response = requests.post(
            f"{self.settings.issuer}/wechat/phone",
            json={"code": code},
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=HTTP_TIMEOUT,
        )
        return _exchange("POST /wechat/phone", response)

    def scan(self, scene: str, decision: str, access_token: str) -> dict[str, Any]:
        """The user scans the website's mini-program code: the mini-program opens its confirm
        page with the code's `scene` (GET, what it shows), then answers (CONTRACT §8). Without a
        scene, the camera reads the newest code the fake WeChat drew."""
        if not scene:
            control = self.control()
            try:
                drawn = control.wxacodes()
            finally:
                control.close()
            if not drawn:
                body = "no code on screen: open the IdP's login page first"
                return {"call": "scan", "status": None, "body": body}
            scene = str(drawn[-1]["scene"])
        headers = {"Authorization": f"Bearer {access_token}"}
        url = f"{self.settings.issuer}/wechat/scan/{scene}"
        shown = _exchange("GET /wechat/scan/<ticket>", requests.get(url, headers=headers,
                                                                     timeout=HTTP_TIMEOUT))
        if shown["status"] != 200:
            return shown
        answer = requests.post(url, json={"decision": decision}, headers=headers,
                               timeout=HTTP_TIMEOUT)
        answered = _exchange("POST /wechat/scan/<ticket>", answer)
        answered["body"] = {"confirm_page": shown["body"], "answer": answered["body"]}
        return answered

    def mp_userinfo(self, access_token: str) -> dict[str, Any]:
        response = requests.get(
            self.metadata()["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=HTTP_TIMEOUT,
        )
        return _exchange("GET /oauth/userinfo", response)

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        response = requests.post(self.metadata()["token_endpoint"], data=form, timeout=HTTP_TIMEOUT)
        return _exchange(f"POST /oauth/token ({form['grant_type']})", response)


def _exchange(label: str, response: requests.Response) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:2000]
    return {"call": label, "status": response.status_code, "body": body}


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def unverified_claims(token: str | None) -> dict[str, Any] | None:
    """For display only: the payload of a JWT this page did not validate itself."""
    if not token or token.count(".") != 2:
        return None
    part = token.split(".")[1]
    try:
        payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


# --- views -----------------------------------------------------------------------------------


def _rp() -> DemoRelyingParty:
    from flask import current_app

    return current_app.extensions["demo_rp"]


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent, session.get("csrf", "")) or not sent:
        abort(400, "CSRF token missing or wrong")


def _register_routes(app: Flask) -> None:
    app.jinja_env.globals.update(csrf_token=csrf_token, pretty=_pretty)

    @app.get("/")
    def home() -> Any:
        rp = _rp()
        notice = None
        if request.args.get("state"):
            # Back from RP-initiated logout: the state must be the one we sent.
            try:
                rp.idp.validate_logout_response()
                notice = "You are logged out of the demo website and of the IdP."
            except OAuthError as error:
                notice = f"Logout response refused: {error.description}"
        website = rp.store.get().get("website")
        return render_template(
            "demo/home.html",
            website=website,
            issuer=rp.settings.issuer,
            notice=notice,
            error=session.pop("rp_error", None),
        )

    @app.get("/login")
    def login() -> Any:
        prompt = request.args.get("prompt")
        extra = {"prompt": prompt} if prompt in ("login", "consent") else {}
        return _rp().idp.authorize_redirect(url_for("callback", _external=True), **extra)

    @app.get("/callback")
    def callback() -> Any:
        rp = _rp()
        try:
            token = rp.idp.authorize_access_token()
        except OAuthError as error:
            session["rp_error"] = f"{error.error}: {error.description or ''}".strip(": ")
            return redirect(url_for("home"))
        rp.remember_login(token)
        return redirect(url_for("home"))

    @app.post("/refresh")
    def refresh() -> Any:
        _check_csrf()
        rp = _rp()
        if not rp.store.get().get("website"):
            return redirect(url_for("home"))
        try:
            rp.refresh()
        except (OAuthError, requests.RequestException) as error:
            session["rp_error"] = f"refresh failed: {error}"
        return redirect(url_for("home"))

    @app.post("/logout")
    def logout() -> Any:
        """RP-Initiated Logout 1.0 §2: id_token_hint, post_logout_redirect_uri and state."""
        _check_csrf()
        rp = _rp()
        website = rp.store.get().get("website") or {}
        id_token = (website.get("token") or {}).get("id_token")
        rp.store.get().pop("website", None)
        if not id_token:
            return redirect(url_for("home"))
        return rp.idp.logout_redirect(
            post_logout_redirect_uri=f"{rp.settings.url}/", id_token_hint=id_token
        )

    @app.get("/miniprogram")
    def miniprogram() -> Any:
        state = _rp().store.get().get("miniprogram", {})
        tokens = state.get("tokens") or {}
        return render_template(
            "demo/miniprogram.html",
            state=state,
            tokens=tokens,
            id_claims=unverified_claims(tokens.get("id_token")),
            access_claims=unverified_claims(tokens.get("access_token")),
        )

    @app.post("/miniprogram/<action>")
    def miniprogram_action(action: str) -> Any:
        _check_csrf()
        rp = _rp()
        state = rp.store.get().setdefault("miniprogram", {})
        tokens = state.get("tokens") or {}
        try:
            result = _miniprogram_call(rp, action, tokens)
        except (requests.RequestException, RuntimeError) as error:
            result = {"call": action, "status": None, "body": f"{type(error).__name__}: {error}"}
        if action == "reset":
            state.clear()
            return redirect(url_for("miniprogram"))
        state["last"] = result
        body = result.get("body")
        if result.get("status") == 200 and isinstance(body, dict) and body.get("access_token"):
            state["tokens"] = {**tokens, **_token_fields(body)}
        return redirect(url_for("miniprogram"))


def _miniprogram_call(rp: DemoRelyingParty, action: str, tokens: dict[str, Any]) -> dict[str, Any]:
    if action == "login":
        return rp.wx_login((request.form.get("user") or "demo-wechat-user")[:64])
    if action == "reset":
        return {}
    if action == "refresh" and tokens.get("refresh_token"):
        return rp.mp_refresh(tokens["refresh_token"])
    if action == "phone" and tokens.get("access_token"):
        return rp.get_phone_number(
            (request.form.get("phone") or "13800138000")[:20], tokens["access_token"]
        )
    if action == "userinfo" and tokens.get("access_token"):
        return rp.mp_userinfo(tokens["access_token"])
    if action == "scan" and tokens.get("access_token"):
        decision = "refuse" if request.form.get("decision") == "refuse" else "confirm"
        scene = (request.form.get("scene") or "").strip()[:32]
        return rp.scan(scene, decision, tokens["access_token"])
    if action in ("refresh", "phone", "userinfo", "scan"):
        return {"call": action, "status": None, "body": "press wx.login first"}
    abort(404)


def _token_fields(body: dict[str, Any]) -> dict[str, Any]:
    names = ("access_token", "refresh_token", "id_token", "expires_in", "scope", "token_type")
    return {name: body[name] for name in names if name in body}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response
