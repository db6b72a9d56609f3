"""The authorization endpoint's common answer (OIDC Core §3.1.2.5) in front of Flask: a browser
whose session is live, asking for what it has consented to, gets its code.

Every other request is handed to the Flask view (`idp/oidc/views.py`) untouched, which answers
it as it always did: a repeated parameter (RFC 6749 §3.1), `prompt` or `max_age` (§3.1.2.1,
the view's fresh-login rules), `ui_locales` (remembered in a cookie by a Flask hook), a body,
no live session or one the account gate detours (`idp/account_centre/gate.py`: deletion
pending), any refusal of the request by Authlib's validation, a step-up (`idp.oidc.step_up`)
and a consent still to ask. What is left is decided with the view's own functions — the live
session (`idp.accounts.sessions.live_session`), Authlib's grant validation, the step-up and
consent checks — and answered by the same `create_authorization_response`, so the code, its
row and the nonce replay check (`idp.oidc.nonces`) are the view's. The answer is the view's
too, byte for byte but for the request id: 302 to the redirect URI, `Vary: Cookie`, never
cached, the security headers of every answer.

Flask's request context, hooks, session and response objects cost ~0.3 ms of an authorization
here (bench/README.md, "authorize off Flask"), about a tenth of a whole sign-in flow's CPU."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import current_app, g
from werkzeug.http import parse_cookie

from idp.accounts import sessions
from idp.input_guard import NUL
from idp.oidc import consent, nonces
from idp.oidc.hot_paths.authlib_bridge import HotOAuth2Request
from idp.oidc.hot_paths.dispatcher import Answer, PageRoutes
from idp.oidc.hot_paths.http import HotRequest
from idp.oidc.interaction import AUTHORIZATION_PARAMETERS
from idp.oidc.step_up import mfa_required, session_has_mfa
from idp.scopes import scope_set

# Parameters whose handling is the view's alone (`views._needs_fresh_login`, the prompts) or a
# Flask hook's (`idp.i18n.remember_ui_locales`).
FLASK_PARAMETERS = frozenset({"prompt", "max_age", "ui_locales"})
# Checked for repetition as the view checks them (`interaction.repeated_parameter`).
COUNTED = frozenset({*AUTHORIZATION_PARAMETERS, "decision"})


class QueryOAuth2Request(HotOAuth2Request):
    """Authlib's request of an authorization request: its parameters are the query's."""

    def __init__(self, request: HotRequest, query: dict[str, str]) -> None:
        super().__init__(request)
        self.payload = BasicOAuth2Payload(query)


def authorize(request: HotRequest) -> Answer | None:
    """The code for a live session's consented request; None hands the request to Flask."""
    try:
        decided = _decide(request)
    except Exception:  # noqa: BLE001 - nothing written yet: the view meets it again, as a page
        return None  # (a database outage: its 503 page; anything else: its error page)
    if decided is None:
        return None
    grant, account = decided
    server = current_app.extensions["idp_authorization_server"]
    response = server.create_authorization_response(grant=grant, grant_user=account)
    # As the Flask pipeline finishes it: a page is never cached; the session was read.
    headers = [item for item in response.headers.items() if item[0] != "Content-Length"]
    if response.mimetype == "text/html" and "Cache-Control" not in response.headers:
        headers.append(("Cache-Control", "no-store"))
    headers.append(("Vary", "Cookie"))
    return response.status_code, headers, response.get_data()


def _decide(request: HotRequest) -> tuple[Any, Any] | None:
    """The validated grant and the signed-in account when the answer is a code; None when
    the view is to answer. Reads only."""
    query = _query(request)
    if query is None or not FLASK_PARAMETERS.isdisjoint(query) or _has_body(request):
        return None
    live = _live_session(request)
    if live is None or live.account.deletion_due_at is not None:
        return None
    setattr(g, sessions.LIVE_KEY, live)  # `signed_in` of the code's row reads it
    server = current_app.extensions["idp_authorization_server"]
    nonces.defer()  # checked by the code's insert, as in the view
    try:
        grant = server.get_consent_grant(QueryOAuth2Request(request, query), end_user=live.account)
    except (OAuth2Error, ValueError):
        return None  # the view answers the refusal (a redirect or its error page)
    client = grant.client
    if mfa_required(bool(getattr(client, "require_mfa", False)), query.get("acr_values")) and (
            not session_has_mfa(live.amr)):
        return None  # step-up: the view sends the browser to the second factor
    if not consent.covers(live.account.id, client, scope_set(grant.request.scope)):
        return None  # the consent page
    return grant, live.account


def _query(request: HotRequest) -> dict[str, str] | None:
    """The query's parameters (the first of a repeated name, as Flask's `MultiDict` reads
    them); None when the view is to answer: a protocol parameter sent twice, a NUL, bad UTF-8."""
    try:
        pairs = parse_qsl(request.environ.get("QUERY_STRING", ""), keep_blank_values=True,
                          encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    query: dict[str, str] = {}
    for name, value in pairs:
        if NUL in name or NUL in value:
            return None
        if name in query:
            if name in COUNTED:
                return None
            continue
        query[name] = value
    return query


def _has_body(request: HotRequest) -> bool:
    environ = request.environ
    return bool(environ.get("CONTENT_LENGTH") not in (None, "", "0")
                or environ.get("HTTP_TRANSFER_ENCODING"))


def _live_session(request: HotRequest) -> Any:
    """The live session the signed session cookie names, read as Flask's session interface
    reads it; None without one."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    interface = app.session_interface
    opened = interface.open_session(app, _Cookies(parse_cookie(request.environ)))
    sid = opened.get(sessions.SESSION_KEY) if opened is not None else None
    return sessions.live_session(sid) if isinstance(sid, str) else None


PAGES: PageRoutes = {"/oauth/authorize": ("oidc.authorize", authorize)}


class _Cookies:
    """What `SessionInterface.open_session` reads of a request."""

    __slots__ = ("cookies",)

    def __init__(self, cookies: Any) -> None:
        self.cookies = cookies
