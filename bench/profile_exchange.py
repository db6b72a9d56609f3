"""Where one mini-program login's CPU goes: the token exchange of a returning user (CONTRACT §5),
in-process (the WSGI app called directly, no server, no network but the fake WeChat's), repeated
under cProfile. The fake WeChat runs in a process of its own (granian, `bench/fake_wechat.py`),
so its CPU is not counted; what is counted is the IdP's: parsing, the grant, the WeChat client,
the identity lookup, the session key, the login record, tokens and their signatures.

    .venv/bin/python bench/profile_exchange.py --postgres             # PostgreSQL + Redis
    .venv/bin/python bench/profile_exchange.py --postgres --no-profile  # CPU ms per login only
    .venv/bin/python bench/profile_exchange.py                        # SQLite

CPU time (`time.process_time`), so a busy machine inflates the figure less than wall time.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import parts  # noqa: E402
from instructions import counted  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JS_CODE_TYPE = "urn:wechat:params:oauth:token-type:js_code"
APPID = "wxprofile00000001"
USERS = 8
SCOPE = "openid profile phone offline_access"
# --parts: (module, attribute path) timed inside the login, as bench/parts.py times a refresh.
EXCHANGE_PARTS = (
    ("idp.oidc.hot_paths.dispatcher", "HotPathDispatcher.__call__"),
    ("idp.oidc.hot_paths.dispatcher", "HotPathDispatcher._answer"),
    ("idp.oidc.hot_paths.token_endpoint", "check_token_rate"),
    ("idp.oidc.hot_paths.token_endpoint", "HotOAuth2Request"),
    ("idp.oidc.server", "IdentityProviderServer.authenticate_client"),
    ("idp.wechat_login.token_exchange", "WeChatTokenExchangeGrant.validate_token_request"),
    ("idp.wechat_login.token_exchange", "WeChatTokenExchangeGrant.create_token_response"),
    ("idp.wechat_login.token_exchange", "sign_in_with_js_code"),
    ("idp.wechat_login.miniprogram", "configured_client"),
    ("idp.wechat.client", "WeChatClient.code_to_session"),
    ("idp.wechat.client", "WeChatClient._send"),
    ("idp.wechat.transport", "CurlPool.request"),
    ("idp.wechat_login.miniprogram", "returning_wechat_user"),
    ("idp.wechat_login.miniprogram", "session_key_upsert"),
    ("idp.wechat_login.miniprogram", "login_record"),
    ("idp.wechat_login.token_exchange", "ExchangeGrant.token_response"),
    ("idp.statements_alone", "commit"),
    ("idp.oidc.keys", "LoadedKey.sign_jwt"),
    ("idp.oidc.grants", "IdTokenIssuer.encode_id_token"),
    ("idp.oidc.tokens", "AccessTokenGenerator.access_token_generator"),
    ("idp.oidc.server", "IdentityProviderServer.stage_token"),
    ("idp.crypto", "SecretBox.encrypt"),
    ("idp.statements_alone", "rows_alone"),
    ("idp.statements_alone", "_execute"),
    ("idp.statements_alone", "_held"),
    ("idp.extensions", "driver_row"),
    ("idp.identity.links", "lookup_keys"),
    ("idp.identity.links", "loaded_instance"),
    ("idp.extensions", "combined"),
    ("psycopg", "Cursor.execute"),
    ("psycopg", "Connection.cursor"),
    ("psycopg", "Cursor.fetchall"),
    ("idp.statements_alone", "_Held.usable"),
    ("idp.wechat_login.upstream", "_client"),
    ("idp.caching", "versions_for"),
    ("idp.oidc.grants", "id_token_claims"),
    ("idp.wechat_login.token_exchange", "demand_second_factor"),
)


def start_fake(workdir: Path, codes: list[str], secret: str) -> tuple[subprocess.Popen[bytes], str]:
    import requests
    from run import HOST, free_port

    (workdir / "js_codes.txt").write_text(
        "".join(f"{code} user{index % USERS}\n" for index, code in enumerate(codes))
    )
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "--workers", "1",
         "--host", HOST, "--port", str(port), "--no-ws", "--log-level", "warning",
         "bench.fake_wechat:load"],
        env={**os.environ, "BENCH_FAKE_APPID": APPID, "BENCH_FAKE_SECRET": secret,
             "BENCH_FAKE_CODES": str(workdir / "js_codes.txt"), "PYTHONPATH": str(ROOT)},
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopped with its worker
    )  # fmt: skip
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/sns/jscode2session", timeout=1)
            return fake, url
        except requests.RequestException:
            time.sleep(0.2)
    stop_fake(fake)
    raise SystemExit("the fake WeChat did not start")


def stop_fake(fake: subprocess.Popen[bytes]) -> None:
    """The granian master and its worker (a kill of the master alone left the worker behind)."""
    os.killpg(fake.pid, signal.SIGKILL)
    fake.wait()


def build(workdir: Path, db_env: dict[str, str], fake_url: str, secret: str) -> tuple[Any, str]:
    from idp import create_app
    from idp.extensions import db
    from idp.oidc.clients import create_client
    from idp.wechat.apps import create_wechat_app

    app = create_app({
        "IDP_INSTANCE_PATH": str(workdir / "instance"),
        "IDP_DATABASE_URL": db_env["IDP_DATABASE_URL"],
        "IDP_REDIS_URL": db_env.get("IDP_REDIS_URL"),
        "IDP_TOKEN_RATE_LIMIT": "1000000/second",
        "IDP_WECHAT_API_BASE": fake_url,
        "IDP_ISSUER": "http://127.0.0.1:5000",
        "IDP_EVENT_DELIVERY": "external",  # no delivery thread polling in this process
    })  # fmt: skip
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "idp" / "migrations"))
        create_wechat_app("miniprogram", APPID, secret, name="profile")
        client, _ = create_client(name="profile mini-program", public=True, wechat_appid=APPID,
                                  grant_types=[TOKEN_EXCHANGE], scope=SCOPE)
        client_id = client.client_id
        db.session.remove()
    return app, client_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=500)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--no-profile", action="store_true", help="CPU time only")
    parser.add_argument("--dump", help="write the raw cProfile stats here")
    parser.add_argument("--parts", action="store_true",
                        help="CPU µs of chosen parts (bench/parts.py's wrappers), no profiler")
    parser.add_argument("--statements", action="store_true",
                        help="print the SQL statements of one login, then measure")
    args = parser.parse_args()
    from pipeline import environ
    from run import database

    run_defaults = argparse.Namespace(
        postgres=args.postgres,
        postgres_url="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        redis_url=args.redis_url,
    )
    warmup = 100
    codes = [f"p{index:06d}{secrets.token_hex(6)}" for index in range(USERS + warmup + args.logins)]
    secret = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="idp-profile-") as directory, database(
        run_defaults, Path(directory)
    ) as db_env:
        fake, fake_url = start_fake(Path(directory), codes, secret)
        try:
            app, client_id = build(Path(directory), db_env, fake_url, secret)
            status: list[str] = []

            def start_response(line: str, _headers: Any, _exc: Any = None) -> None:
                status.append(line)

            def login(code: str) -> None:
                body = urlencode({"grant_type": TOKEN_EXCHANGE, "client_id": client_id,
                                  "subject_token": code, "subject_token_type": JS_CODE_TYPE,
                                  "scope": SCOPE}).encode()  # fmt: skip
                request = environ("POST", "/oauth/token", {
                    "Content-Type": "application/x-www-form-urlencoded"}, body)
                request["wsgi.input"] = io.BytesIO(body)
                answer = app(request, start_response)
                b"".join(answer)
                getattr(answer, "close", lambda: None)()
                if not status[-1].startswith("200"):
                    raise SystemExit(f"login failed: {status[-1]}")

            for code in codes[:USERS + warmup]:  # first logins create the accounts; warm-up
                login(code)
            measured = codes[USERS + warmup:]
            if args.statements:
                print_statements(app, lambda: login(measured[0]))
                measured = measured[1:]
            totals: dict[str, float] = collections.defaultdict(float)
            calls: collections.Counter[str] = collections.Counter()
            if args.parts:
                parts.wrap_parts(totals, calls, EXCHANGE_PARTS)
                for code in measured[:warmup]:
                    login(code)
                measured = measured[warmup:]
                totals.clear()
                calls.clear()
            # CPU time, not wall time: waiting on PostgreSQL or the fake WeChat costs no CPU.
            profiler = None if args.no_profile or args.parts else cProfile.Profile(
                time.process_time)
            started, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
            if profiler:
                profiler.enable()
            counted(login, measured)
            if profiler:
                profiler.disable()
            cpu, elapsed = time.process_time() - cpu, time.perf_counter() - started
            own = time.thread_time() - own
        finally:
            stop_fake(fake)
    if profiler:
        stats = pstats.Stats(profiler)
        if args.dump:
            stats.dump_stats(args.dump)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
    if args.parts:
        print(parts.table(totals, calls, len(measured), "login"))
    overhead = "" if args.no_profile or args.parts else " (profiler overhead included)"
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\n{len(measured)} returning-user logins ({backend}):"
          f" {cpu / len(measured) * 1000:.2f} ms CPU ({own / len(measured) * 1000:.2f} ms in the"
          f" requests' thread), {elapsed / len(measured) * 1000:.2f} ms"
          f" wall each{overhead}", file=sys.stderr)


def print_statements(app: Any, call: Any) -> None:
    """Each statement one login sends to the database, in order (round trips to count)."""
    from sqlalchemy import event

    from idp.extensions import db

    with app.app_context():
        engine = db.engine
    sent: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split())[:160])

    def commit(_conn: Any) -> None:
        sent.append("COMMIT")

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", commit)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", commit)
    print(f"{len(sent)} statements of one returning-user login:", file=sys.stderr)
    for number, statement in enumerate(sent, 1):
        print(f"  {number:2d}. {statement}", file=sys.stderr)


if __name__ == "__main__":
    main()
