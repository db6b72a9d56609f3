"""What serving the authorization endpoint in front of Flask would save: a measurement, not a
feature. A PROTOTYPE handler of only the common request (a signed-in browser, a live session,
consent covered: 302 with a code) runs behind `idp/oidc/hot_paths`' dispatcher, beside the
Flask endpoint, and both are timed in CPU µs per request, in-process, alternating; plus the
floor of the Flask pipeline (a no-op page through every hook, the session read included).

The prototype skips what a real hot path would have to keep or hand back to Flask: `prompt`,
`max_age`, step-up, the consent page, errors (all answered by Flask today), the repeated-
parameter refusal of the whole request, the locale cookie. Its figure is a floor for an
off-Flask authorization endpoint, not a design.

    .venv/bin/python bench/authorize_off_flask.py --postgres --redis-url redis://127.0.0.1:6379/14
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import environ  # noqa: E402
from profile_token import REDIRECT_URI, build, signed_in_cookie  # noqa: E402

SCOPE = "openid profile phone"


def prototype(app: Any) -> Callable[[Any], Any]:
    """The common authorization request, without Flask (see the module's docstring)."""
    from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
    from flask import g

    from idp.accounts import sessions
    from idp.identity.models import AccountStatus
    from idp.models_base import utcnow
    from idp.oidc import consent, nonces
    from idp.oidc.hot_paths.authlib_bridge import HotOAuth2Request
    from idp.oidc.server import server_of

    server = server_of(app)

    class QueryRequest(HotOAuth2Request):
        def __init__(self, request: Any) -> None:
            super().__init__(request)
            self.payload = BasicOAuth2Payload(request.args)

    def authorize(request: Any) -> Any:
        cookie = SimpleCookie(request.environ.get("HTTP_COOKIE", ""))["idp_session"].value
        data = app.session_interface.open_session(app, _CookieOnly(cookie))
        row = sessions._read_session(data["idp_sid"])
        assert row is not None and row["session_ended_at"] is None
        assert row["session_expires_at"] > utcnow() and not row["session_second_factor_pending"]
        assert row["account_status"] == AccountStatus.ACTIVE
        live = sessions.LiveSession(
            {c.key: row[f"session_{c.key}"] for c in sessions._SESSIONS.c},
            sessions.LiveAccount({c.key: row[f"account_{c.key}"] for c in sessions._ACCOUNTS.c}))
        assert live.account.deletion_due_at is None
        setattr(g, sessions.LIVE_KEY, live)
        nonces.defer()
        oauth = QueryRequest(request)
        oauth.user = live.account
        grant = server.get_authorization_grant(oauth)
        grant.validate_no_multiple_request_parameter(oauth)
        grant.validate_consent_request()
        assert consent.covers(live.account.id, grant.client, set(grant.request.scope.split()))
        response = server.create_authorization_response(grant=grant, grant_user=live.account)
        return 302, [("Location", response.location), ("Cache-Control", "no-store")], b""

    return authorize


class _CookieOnly:
    def __init__(self, value: str) -> None:
        self.cookies = {"idp_session": value}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis")
    parser.add_argument("--postgres-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from flask import redirect
    from run import database

    from idp.oidc.hot_paths.dispatcher import HotPathDispatcher

    with tempfile.TemporaryDirectory(prefix="idp-authorize-") as directory, database(
        args, Path(directory)
    ) as db_env:
        app, basic, _account_id = build(Path(directory), db_env)
        client_id = base64.b64decode(basic[6:]).decode().split(":")[0]
        app.add_url_rule("/oauth/authorize-floor", "oidc.floor",
                         lambda: redirect(f"{REDIRECT_URI}?code=c&state=s"))
        hot = HotPathDispatcher(app, app.wsgi_app.fallback,
                                {"/oauth/authorize-hot": ("oidc.authorize",
                                                          {"GET": prototype(app)})})
        cookie = signed_in_cookie(app)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())

        def request(wsgi: Callable[..., Any], path: str) -> Callable[[], None]:
            def once() -> None:
                from urllib.parse import urlencode

                env = environ("GET", path, {"Cookie": cookie})
                env["QUERY_STRING"] = urlencode({
                    "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
                    "scope": SCOPE, "state": secrets.token_hex(4), "nonce": secrets.token_hex(8),
                    "code_challenge": challenge.rstrip(b"=").decode(),
                    "code_challenge_method": "S256"})
                env["wsgi.input"] = io.BytesIO(b"")
                status: list[str] = []
                headers: list[Any] = []
                answer = wsgi(env, lambda line, sent, _exc=None: (status.append(line),
                                                                  headers.append(sent)))
                b"".join(answer)
                getattr(answer, "close", lambda: None)()
                assert status[0].startswith("302"), status
                assert "code=" in dict(headers[0])["Location"]
            return once

        cases = {
            "Flask pipeline floor (no-op page, hooks, session read)":
                request(app, "/oauth/authorize-floor"),
            "GET /oauth/authorize (Flask)": request(app, "/oauth/authorize"),
            "the same, prototype in front of Flask": request(hot, "/oauth/authorize-hot"),
        }
        print("| request | CPU µs per request |\n|---|---:|")
        for _ in range(args.rounds):
            for name, run in cases.items():
                for _ in range(200):
                    run()
                started = time.process_time()
                for _ in range(args.requests):
                    run()
                spent = (time.process_time() - started) / args.requests * 1e6
                print(f"| {name} | {spent:,.0f} |")


if __name__ == "__main__":
    main()
