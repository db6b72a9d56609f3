"""Where the hot endpoints' CPU goes: the IdP's WSGI callable called in-process (no server, no
network) for `client_credentials`, `refresh_token` (a rotating family: every answer's refresh
token is the next request's), `authorization_code` (a fresh code per request, made beforehand
and not timed), the authorization request of a signed-in browser, introspection and userinfo of
a user's access token, and JWKS: CPU µs per request (`time.process_time`) and, with
`--profile`, the top of a cProfile of the same loop (timed in CPU, so waiting on PostgreSQL or
Redis is not counted). As in production, every request writes its JSON access line (to a file
in the run's directory): it is part of each request's cost.

    .venv/bin/python bench/profile_token.py                          # SQLite
    .venv/bin/python bench/profile_token.py --postgres --redis-url redis://127.0.0.1:6379/14
    .venv/bin/python bench/profile_token.py --postgres --profile refresh_token
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import io
import json
import os
import pstats
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instructions import counted  # noqa: E402
from pipeline import environ  # noqa: E402

REDIRECT_URI = "http://127.0.0.1:9/cb"
SCENARIOS = ("client_credentials", "authorize", "refresh_token", "authorization_code",
             "introspection", "userinfo", "jwks")
FORM = "application/x-www-form-urlencoded"


def build(workdir: Path, db_env: dict[str, str]) -> tuple[Any, str, str]:
    from idp import create_app
    from idp.accounts.seed import create_password_user
    from idp.extensions import db
    from idp.oidc.clients import create_client

    app = create_app({
        "IDP_INSTANCE_PATH": str(workdir / "instance"),
        "IDP_DATABASE_URL": db_env["IDP_DATABASE_URL"],
        "IDP_REDIS_URL": db_env.get("IDP_REDIS_URL"),
        "IDP_TOKEN_RATE_LIMIT": "1000000/second",
        "IDP_ACCESS_LOG": True,
        "IDP_LOG_JSON": True,
    })
    with app.app_context():
        db.create_all()
        client, secret = create_client(
            name="profile", redirect_uris=[REDIRECT_URI], first_party=True,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            scope="openid profile phone offline_access",
        )
        account = create_password_user("+8613700000002", "profile-password-1")
        basic = "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
        return app, basic, account.id


def new_code(app: Any, client_id: str, account_id: str, verifier: str) -> str:
    from idp.extensions import db
    from idp.models_base import utcnow
    from idp.oidc.models import AuthorizationCode, token_digest

    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    values: dict[str, Any] = dict(
        client_id=client_id, account_id=account_id, redirect_uri=REDIRECT_URI,
        scope="openid profile offline_access", nonce=None,
        code_challenge=challenge.rstrip(b"=").decode(), code_challenge_method="S256",
        auth_time=int(time.time()), amr=["pwd"], session_id=None,
        expires_at=utcnow() + timedelta(minutes=10))
    with app.app_context():
        try:  # sealed as the authorization endpoint makes it (an older checkout: random)
            from idp.oidc.sealed_codes import seal
        except ImportError:
            code = secrets.token_urlsafe(36)
        else:
            code = seal(values) or secrets.token_urlsafe(36)
        db.session.add(AuthorizationCode(code_digest=token_digest(code), **values))
        db.session.commit()
    return code


def call(app: Any, env: dict[str, Any]) -> dict[str, Any]:
    status: list[str] = []
    request = dict(env)
    request["wsgi.input"] = io.BytesIO(env["_body"])
    answer = app(request, lambda line, _headers, _exc=None: status.append(line))
    body = b"".join(answer)
    getattr(answer, "close", lambda: None)()
    if not status[0].startswith("200"):
        raise SystemExit(f"{status[0]}: {body[:300]!r}")
    return dict(json.loads(body))


def scenarios(app: Any, basic: str, account_id: str, count: int) -> dict[str, Callable[[], Any]]:
    client_id = base64.b64decode(basic[6:]).decode().split(":")[0]
    headers = {"Authorization": basic, "Content-Type": FORM}
    credentials = environ("POST", "/oauth/token", headers, b"grant_type=client_credentials")

    verifier = secrets.token_urlsafe(48)
    first = call(app, environ("POST", "/oauth/token", headers, _form(
        grant_type="authorization_code", code=new_code(app, client_id, account_id, verifier),
        redirect_uri=REDIRECT_URI, code_verifier=verifier)))
    refresh = [first["refresh_token"]]
    introspect = environ("POST", "/oauth/introspect", headers,
                         _form(token=first["access_token"]))
    userinfo = environ("GET", "/oauth/userinfo", {"Authorization": "Bearer "
                                                  + first["access_token"]})
    jwks = environ("GET", "/oauth/jwks", {})

    def refresh_once() -> None:
        answer = call(app, environ("POST", "/oauth/token", headers, _form(
            grant_type="refresh_token", refresh_token=refresh[0])))
        refresh[0] = answer["refresh_token"]

    codes = [new_code(app, client_id, account_id, verifier) for _ in range(count + 50)]

    def code_once() -> None:
        call(app, environ("POST", "/oauth/token", headers, _form(
            grant_type="authorization_code", code=codes.pop(), redirect_uri=REDIRECT_URI,
            code_verifier=verifier)))

    cookie = signed_in_cookie(app)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())

    def authorize_once() -> None:
        query = _form(response_type="code", client_id=client_id, redirect_uri=REDIRECT_URI,
                      scope="openid profile phone", state=secrets.token_hex(4),
                      nonce=secrets.token_hex(8),
                      code_challenge=challenge.rstrip(b"=").decode(),
                      code_challenge_method="S256").decode()
        env = environ("GET", "/oauth/authorize", {"Cookie": cookie})
        env["QUERY_STRING"] = query
        status: list[str] = []
        env["wsgi.input"] = io.BytesIO(b"")
        answer = app(env, lambda line, _headers, _exc=None: status.append(line))
        b"".join(answer)
        getattr(answer, "close", lambda: None)()
        if not status[0].startswith("302"):
            raise SystemExit(f"authorize: {status[0]}")

    return {
        "client_credentials": lambda: call(app, credentials),
        "authorize": authorize_once,
        "refresh_token": refresh_once,
        "authorization_code": code_once,
        "introspection": lambda: call(app, introspect),
        "userinfo": lambda: call(app, userinfo),
        "jwks": lambda: call(app, jwks),
    }


def signed_in_cookie(app: Any) -> str:
    """The Cookie header of a browser signed in as `build`'s user (the login form, as people
    use it)."""
    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert csrf, "no CSRF token on the login page"
    signed_in = browser.post("/login", data={
        "identifier": "+8613700000002", "password": "profile-password-1", "next": "",
        "csrf_token": csrf.group(1)})
    assert signed_in.status_code == 302, signed_in.status_code
    return "; ".join(f"{c.key}={c.value}" for c in browser._cookies.values())


def _form(**fields: str) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode()


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """--postgres, --postgres-url, --redis-url (`run.database` reads them)."""
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis")
    parser.add_argument("--postgres-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")


def main() -> None:
    parser = argparse.ArgumentParser()
    add_store_arguments(parser)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--profile", choices=SCENARIOS)
    parser.add_argument("--only", choices=SCENARIOS,
                        help="time this grant alone (e.g. under `perf stat` or callgrind)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--dump", type=Path, help="also write the profile here (pstats file)")
    args = parser.parse_args()
    from run import database

    with tempfile.TemporaryDirectory(prefix="idp-token-") as directory, database(
        args, Path(directory)
    ) as db_env, open(Path(directory) / "access.log", "w") as access_log:
        app, basic, account_id = build(Path(directory), db_env)
        sys.stderr = access_log  # the JSON lines (the app's handler writes to sys.stderr)
        cases = scenarios(app, basic, account_id, args.requests * 2 + 100)
        for run in cases.values():
            for _ in range(50):
                run()
        if args.profile:
            profiler = cProfile.Profile(time.process_time)  # CPU, not waiting
            profiler.enable()
            for _ in range(args.requests):
                cases[args.profile]()
            profiler.disable()
            stats = pstats.Stats(profiler)
            if args.dump:
                stats.dump_stats(args.dump)
            stats.sort_stats("cumulative").print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)
            return
        backend = "PostgreSQL + Redis" if args.postgres else "SQLite"
        print(f"| request | CPU µs per request ({backend}) | the stores' CPU µs per request |")
        print("|---|---:|---:|")
        for name, run in cases.items():
            if args.only and name != args.only:
                continue
            stores = store_pids(app) if args.postgres else []
            store_started = sum(process_cpu(pid) for pid in stores)
            started = time.process_time()
            counted(lambda _: run(), range(args.requests))  # noqa: B023 - called at once
            cpu = (time.process_time() - started) / args.requests * 1e6
            store = (sum(process_cpu(pid) for pid in stores) - store_started) / args.requests * 1e6
            print(f"| {name} | {cpu:,.0f} | {f'{store:,.0f}' if stores else '–'} |")


def store_pids(app: Any) -> list[int]:
    """This run's own share of the stores: the PostgreSQL backends of its database (the app's
    pooled connections), PostgreSQL's WAL writer, and its Redis server."""
    from idp.extensions import db

    with app.app_context():
        connection = db.session.connection()
        pids = [row[0] for row in connection.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "OR backend_type = 'walwriter'")]
        db.session.rollback()
    import redis

    from idp.extensions import redis_options  # noqa: F401 - the app's Redis client's options

    url = app.config.get("IDP_REDIS_URL")
    if url:
        pids.append(int(redis.Redis.from_url(url).info("server")["process_id"]))
    return pids


def process_cpu(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
