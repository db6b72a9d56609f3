"""The per-request pipeline, measured in-process: CPU microseconds per request of each hot
endpoint through `idp/oidc/hot_paths` (the token endpoint's client_credentials included), of
each Flask hook alone (called in a request context of a JSON endpoint), and of the floor (a raw
WSGI callable and a bare Flask view returning the same JWKS bytes). No server, no network: the
WSGI callable is called directly, so the figures are the IdP's own Python work per request
(`bench/README.md`, "The request pipeline"). CPU time (`time.process_time`) rather than wall
time, so a busy machine inflates the figures less.

    .venv/bin/python bench/pipeline.py               # SQLite, in-process caches
    .venv/bin/python bench/pipeline.py --postgres    # PostgreSQL + Redis (a temporary database)
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def environ(method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes = b"") -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5000", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:5000", "CONTENT_LENGTH": str(len(body)), "_body": body,
    }
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    return env


def per_request_us(app: Callable[..., Any], env: dict[str, Any], count: int) -> float:
    """CPU microseconds per request, after a warm-up; the answer must be a success."""
    status: list[str] = []

    def start_response(line: str, _headers: Any, _exc: Any = None) -> None:
        status.append(line)

    def once() -> None:
        request = dict(env)
        request["wsgi.input"] = io.BytesIO(env["_body"])
        answer = app(request, start_response)
        b"".join(answer)
        getattr(answer, "close", lambda: None)()

    for _ in range(200):
        once()
    if not status[-1].startswith("2"):
        raise SystemExit(f"{env['PATH_INFO']}: {status[-1]}")
    started = time.process_time()
    for _ in range(count):
        once()
    return (time.process_time() - started) / count * 1e6


def floor_apps(body: bytes) -> tuple[Callable[..., Any], Callable[..., Any]]:
    from flask import Flask, Response

    headers = [("content-type", "application/json"), ("cache-control", "public, max-age=60")]

    def raw(_environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [*headers, ("content-length", str(len(body)))])
        return [body]

    bare = Flask("floor")
    bare.add_url_rule("/oauth/jwks", "jwks", lambda: Response(body, headers=dict(headers)))
    return raw, bare


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    from profile_request import build, user_access_token
    from run import database

    settings = argparse.Namespace(
        postgres=args.postgres,
        postgres_url="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        redis_url="redis://127.0.0.1:6379/14",
    )
    with tempfile.TemporaryDirectory(prefix="idp-pipeline-") as directory, database(
        settings, Path(directory)
    ) as db_env:
        app, _client, credentials = build(Path(directory), db_env)
        token = user_access_token(app)
        basic = "Basic " + base64.b64encode(
            f"{credentials['client_id']}:{credentials['client_secret']}".encode()).decode()
        form = "application/x-www-form-urlencoded"
        cases = {
            "jwks": environ("GET", "/oauth/jwks"),
            "discovery": environ("GET", "/.well-known/openid-configuration"),
            "userinfo": environ("GET", "/oauth/userinfo", {"Authorization": f"Bearer {token}"}),
            "introspection": environ("POST", "/oauth/introspect",
                                     {"Authorization": basic, "Content-Type": form},
                                     f"token={token}".encode()),
            "client_credentials (hot path)": environ(
                "POST", "/oauth/token", {"Authorization": basic, "Content-Type": form},
                b"grant_type=client_credentials"),
        }
        rows = []
        with app.app_context():
            jwks_body = app.extensions["idp_keyring"].public_jwks_body()
        raw, bare = floor_apps(jwks_body)
        rows.append(("floor: raw WSGI callable", per_request_us(raw, cases["jwks"], args.requests)))
        rows.append(("floor: bare Flask view", per_request_us(bare, cases["jwks"], args.requests)))
        for name, env in cases.items():
            rows.append((name, per_request_us(app, env, args.requests)))
        for name, cost in hook_costs(app, cases["client_credentials (hot path)"], args.requests):
            rows.append((f"  hook {name}", cost))
    print(f"| path | CPU µs per request ({'PostgreSQL + Redis' if args.postgres else 'SQLite'}) |")
    print("|---|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:,.1f} |")


def hook_costs(app: Any, env: dict[str, Any], count: int) -> list[tuple[str, float]]:
    """Each before/after-request hook of the Flask pipeline timed alone, called `count` times
    inside one request context of `env` (an after hook on a JSON answer like the endpoint's)."""
    from flask import jsonify

    costs = []
    request_env = {key: value for key, value in env.items() if key != "_body"}
    request_env["wsgi.input"] = io.BytesIO(env["_body"])
    with app.request_context(request_env):
        for hook in app.before_request_funcs.get(None, []):
            costs.append((_name(hook), _time(lambda h=hook: h(), count)))
        response = jsonify({"access_token": "x" * 600, "token_type": "Bearer"})
        for hook in app.after_request_funcs.get(None, []):
            costs.append((_name(hook), _time(lambda h=hook: h(response), count)))
    return costs


def _name(hook: Any) -> str:
    function = getattr(hook, "func", hook)  # a functools.partial names its function
    return f"{function.__module__}.{function.__qualname__}"


def _time(call: Callable[[], Any], count: int) -> float:
    try:
        call()
    except Exception:  # noqa: BLE001 - a hook that refuses outside its real request: not timed
        return float("nan")
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) / count * 1e6


if __name__ == "__main__":
    main()
