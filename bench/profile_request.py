"""Where the time of one request goes: the IdP in-process (Flask test client, SQLite), one
request path repeated under a profiler. pyinstrument when installed, else cProfile.

    python bench/profile_request.py client_credentials
    python bench/profile_request.py userinfo --requests 2000
    python bench/profile_request.py userinfo --postgres   # a temporary database + Redis
    python bench/profile_request.py userinfo --no-profile # plain timing
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def build(workdir: Path, db_env: dict[str, str]) -> tuple[Any, Any, dict[str, str]]:
    from idp import create_app
    from idp.extensions import db
    from idp.oidc.clients import create_client

    app = create_app(
        {
            "IDP_INSTANCE_PATH": str(workdir / "instance"),
            "IDP_DATABASE_URL": db_env["IDP_DATABASE_URL"],
            "IDP_REDIS_URL": db_env.get("IDP_REDIS_URL"),
            "IDP_TOKEN_RATE_LIMIT": "1000000/second",
        }
    )
    with app.app_context():
        db.create_all()
        client, secret = create_client(
            name="profile", grant_types=["client_credentials"], scope="openid profile"
        )
        credentials = {"client_id": client.client_id, "client_secret": secret or ""}
    return app, app.test_client(), credentials


def user_access_token(app: Any) -> str:
    """A user's access token with `openid`, made directly (no login: argon2 is not profiled)."""
    from authlib.oauth2.rfc6749.models import ClientMixin  # noqa: F401

    from idp.accounts.seed import create_password_user
    from idp.oidc.clients import create_client
    from idp.oidc.server import authorization_server

    with app.test_request_context("/oauth/token", method="POST"):
        account = create_password_user("+8613700000001", "profile-password-1")
        client, _ = create_client(name="rp", redirect_uris=["http://127.0.0.1:9/cb"])
        generate = authorization_server.generate_token
        token = generate("authorization_code", client, user=account, scope="openid profile phone")
        return token["access_token"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", choices=["client_credentials", "userinfo", "jwks"])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis")
    parser.add_argument("--no-profile", action="store_true", help="time only")
    args = parser.parse_args()
    from run import database

    run_defaults = argparse.Namespace(
        postgres=args.postgres,
        postgres_url="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        redis_url="redis://127.0.0.1:6379/14",
    )
    with tempfile.TemporaryDirectory(prefix="idp-profile-") as directory, database(
        run_defaults, Path(directory)
    ) as db_env:
        app, client, credentials = build(Path(directory), db_env)
        if args.path == "client_credentials":
            def call() -> Any:
                return client.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(credentials["client_id"], credentials["client_secret"]),
                )
        elif args.path == "userinfo":
            bearer = {"Authorization": f"Bearer {user_access_token(app)}"}

            def call() -> Any:
                return client.get("/oauth/userinfo", headers=bearer)
        else:
            def call() -> Any:
                return client.get("/oauth/jwks")

        for _ in range(50):  # warm caches: keys parsed, metadata loaded
            assert call().status_code == 200
        started = time.perf_counter()
        if args.no_profile:
            for _ in range(args.requests):
                call()
        else:
            profile_with(call, args.requests, args.top)
        elapsed = time.perf_counter() - started
        overhead = "" if args.no_profile else " (profiler overhead included)"
        print(f"\n{args.requests} × {args.path}: {elapsed / args.requests * 1000:.2f} ms each"
              + overhead, file=sys.stderr)


def profile_with(call: Any, count: int, top: int) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(count):
            call()
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        return
    instrument = Profiler()
    with instrument:
        for _ in range(count):
            call()
    instrument.print()


if __name__ == "__main__":
    main()
