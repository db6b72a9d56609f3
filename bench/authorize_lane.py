"""The authorization endpoint's common answer in front of Flask (`idp/oidc/hot_paths/authorize.py`)
against the Flask view answering the same request (the lane bypassed), and the floor of the
Flask pipeline (a no-op page through every hook, the session read included): CPU µs per
request, in-process, alternating, PostgreSQL + Redis.

    .venv/bin/python bench/authorize_lane.py --postgres --redis-url redis://127.0.0.1:6379/14
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import environ  # noqa: E402
from profile_token import (  # noqa: E402
    REDIRECT_URI,
    add_store_arguments,
    build,
    signed_in_cookie,
)

SCOPE = "openid profile phone"


def main() -> None:
    parser = argparse.ArgumentParser()
    add_store_arguments(parser)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from flask import redirect
    from run import database

    with tempfile.TemporaryDirectory(prefix="idp-authorize-") as directory, database(
        args, Path(directory)
    ) as db_env:
        app, basic, _account_id = build(Path(directory), db_env)
        client_id = base64.b64decode(basic[6:]).decode().split(":")[0]
        app.add_url_rule("/oauth/authorize-floor", "oidc.floor",
                         lambda: redirect(f"{REDIRECT_URI}?code=c&state=s"))
        flask_only = app.wsgi_app.fallback
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
            "GET /oauth/authorize, the Flask view (the lane bypassed)":
                request(flask_only, "/oauth/authorize"),
            "the same, the lane in front of Flask": request(app, "/oauth/authorize"),
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
