"""How the IdP grows with its data: admin pages, the reconciliation report, the worker and the
protocol paths timed on PostgreSQL at 1,000 and at 1,000,000 accounts (issue 18).

    python bench/scale.py                          # 1k and 1M accounts (the 1M seed takes minutes)
    python bench/scale.py --accounts 1000 --accounts 100000
    python bench/scale.py --write-readme           # also put the table into bench/README.md

Each size gets a fresh database on the PostgreSQL server of IDP_BENCH_DATABASE_URL (default the
local test server), migrated by Alembic, then seeded by SQL in the shape of a large deployment
(bench/scale_seed.py). Pages are requested in-process through Flask's test client as a signed-in
admin (no HTTP server, so the figures are the application's and the database's own); the report
runs as `idp identity report --json` in a process of its own, whose peak RSS is measured; the
protocol paths use the fake WeChat on loopback. Each figure is the median of `--repeat` runs
after one warm-up. Targets at 1M: every admin page and search ≤ 100 ms median, the report
≤ 10 s and ≤ 256 MB, every protocol operation within 1.5× its 1k figure, flat web memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale_seed import account_id, seed  # noqa: E402

SERVER_URL = os.environ.get(
    "IDP_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MINI_APPID = "wxbench00000000001"
MINI_SECRET = "bench-mini-secret-000000000000001"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JS_CODE = "urn:wechat:params:oauth:token-type:js_code"
README = ROOT / "bench" / "README.md"
MARKERS = ("<!-- scale:begin -->", "<!-- scale:end -->")


def fresh_database(name: str) -> str:
    url = sa.engine.make_url(SERVER_URL)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    name = sa.engine.make_url(database_url).database
    engine = sa.create_engine(sa.engine.make_url(SERVER_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def settings(database_url: str, instance: Path, wechat_base: str) -> dict[str, str]:
    return {
        "IDP_DATABASE_URL": database_url,
        "IDP_INSTANCE_PATH": str(instance),
        "IDP_SECRET_KEY": "bench-secret-key",
        "IDP_ENCRYPTION_KEY": "bench-encryption-key",
        # Fixed, as a deployment's are: a kept database encrypted by one run reads in the next
        # (each run's instance folder is new, and keys generated there would differ).
        "IDP_DATA_KEYS": "1:bench-data-key",
        "IDP_BLIND_INDEX_KEYS": "1:bench-blind-index-key",
        "IDP_WECHAT_API_BASE": wechat_base,
        "IDP_WECHAT_OPEN_BASE": wechat_base,
        "IDP_EVENT_DELIVERY": "external",
    }


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    call()  # warm-up: caches, prepared plans, a first connection
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def alternating_medians(operations: dict[int, dict[str, Callable[[], Any]]],
                        repeat: int) -> dict[int, dict[str, float]]:
    """Each operation's median per size, sampled A B A B across the sizes so that whatever
    else the machine is doing weighs on every size alike."""
    sizes = sorted(operations)
    samples: dict[int, dict[str, list[float]]] = {size: {} for size in sizes}
    for name in operations[sizes[0]]:
        for size in sizes:
            operations[size][name]()  # warm-up: caches, prepared plans, a first connection
        for _ in range(repeat):
            for size in sizes:
                started = time.perf_counter()
                operations[size][name]()
                samples[size].setdefault(name, []).append(
                    (time.perf_counter() - started) * 1000)
    return {size: {name: statistics.median(values) for name, values in by_name.items()}
            for size, by_name in samples.items()}


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def seeded_accounts(database_url: str) -> int | None:
    """How many accounts a kept database holds (None: no such database or no schema)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM account")).scalar() or 0)
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()


class Bench:
    def __init__(self, accounts: int, repeat: int, wechat: Any, workdir: Path,
                 reuse: bool = False) -> None:
        from flask_migrate import upgrade

        from idp import MIGRATIONS_DIRECTORY, create_app
        from idp.extensions import db

        self.accounts = accounts
        self.repeat = repeat
        self.wechat = wechat
        name = f"idp_scale_{accounts}"
        kept = sa.engine.make_url(SERVER_URL).set(database=name).render_as_string(
            hide_password=False)
        self.reused = reuse and (seeded_accounts(kept) or 0) >= accounts
        self.database_url = kept if self.reused else fresh_database(name)
        self.env = settings(self.database_url, workdir / f"instance-{accounts}", wechat.base_url)
        config = {**self.env, "RATELIMIT_ENABLED": False, "IDP_THROTTLE_ENABLED": False,
                  "IDP_KEY_CACHE_SECONDS": 5}
        self.app = create_app(config)
        self.seed_seconds = 0.0
        with self.app.app_context():
            upgrade(directory=MIGRATIONS_DIRECTORY)
            if not self.reused:
                started = time.monotonic()
                with db.engine.connect() as connection:
                    seed(connection, accounts, progress=self._progress)
                self.seed_seconds = time.monotonic() - started
            db.session.remove()

    def _progress(self, step: str, seconds: float) -> None:
        print(f"  [{self.accounts:,}] seeded {step} in {seconds:.1f} s", flush=True)

    # --- admin -----------------------------------------------------------------------------

    def admin_browser(self) -> Any:
        """A signed-in admin who passed the second factor (set up directly: no argon2, no TOTP
        round trip, which are not what is measured)."""
        from idp.accounts.seed import create_password_user
        from idp.admin.access import TOTP_PASSED_KEY
        from idp.extensions import db
        from idp.identity.accounts import find_account
        from idp.identity.audit import Actor
        from idp.identity.models import IdentityKind, LoginSession
        from idp.models_base import utcnow
        from idp.staff.permissions import IDENTITY
        from idp.staff.roles import grant_role

        with self.app.app_context():
            admin = find_account(IdentityKind.PHONE, "+8613500000001") or create_password_user(
                "+8613500000001", "bench-admin-password", admin=True)
            # The bootstrap admin holds `security`, which grants roles and reads no account.
            grant_role(admin, IDENTITY, Actor.system("bench"))
            admin.totp_secret_encrypted = "enrolled"  # only its presence is checked on pages
            row = LoginSession(id=f"bench-{self.accounts}-{time.time_ns()}", account_id=admin.id,
                               expires_at=utcnow().replace(year=utcnow().year + 1))
            db.session.add(row)
            db.session.commit()
            sid = row.id
        browser = self.app.test_client()
        with browser.session_transaction() as session:
            session["idp_sid"] = sid
            session[TOTP_PASSED_KEY] = {"sid": sid, "at": int(time.time())}
        return browser

    def admin_operations(self) -> dict[str, Callable[[], Any]]:
        from idp.maintenance.reconciliation import run_reconciliation
        from idp.usage.rollups import refresh_cross_channel

        with self.app.app_context():
            refresh_cross_channel()  # what `idp worker` keeps fresh
            run_reconciliation(trigger="cli")
        browser = self.admin_browser()
        old_account = account_id(7)
        pages = {
            "admin: search by phone": "/admin/accounts?q=%2B8613600000777",
            "admin: search by openid": "/admin/accounts?q=o-mini-778",
            "admin: search by sub": f"/admin/accounts?q={account_id(779)}",
            "admin: search by name prefix": "/admin/accounts?q=wang%2012",
            "admin: search by name substring": "/admin/accounts?q=ng%20123",
            "admin: account list": "/admin/accounts",
            "admin: dashboard": "/admin/",
            "admin: account page (old account)": f"/admin/accounts/{old_account}",
            "admin: suggested merges": "/admin/suggestions",
        }
        def get(url: str) -> Callable[[], None]:
            def call() -> None:
                response = browser.get(url)
                assert response.status_code == 200, (url, response.status_code)
            return call

        return {name: get(url) for name, url in pages.items()}

    # --- report and worker ---------------------------------------------------------------

    def report(self) -> dict[str, float]:
        """The reconciliation as `idp worker` and `idp identity report --json` run it, in a
        process of its own: the run (SQL, stored) and its JSON, timed apart from the start-up
        of Python and the app; the process's peak RSS. And the whole command, start-up included."""
        measure = (
            "import io, resource, sys, time\n"
            "from idp import create_app\n"
            "from idp.maintenance.reconciliation import run_reconciliation, write_json\n"
            "app = create_app()\n"
            "with app.app_context():\n"
            "    started = time.monotonic()\n"
            "    write_json(run_reconciliation(trigger='cli'), io.StringIO())\n"
            "    print(time.monotonic() - started,\n"
            "          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
        )
        run = subprocess.run([sys.executable, "-c", measure], env={**os.environ, **self.env},
                             capture_output=True, text=True, check=True).stdout.split()
        idp = Path(sys.executable).parent / "idp"
        started = time.monotonic()
        subprocess.run([str(idp), "identity", "report", "--json"], env={**os.environ, **self.env},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return {"report: seconds": float(run[-2]), "report: peak MB": float(run[-1]),
                "report: whole command, start-up included (s)": time.monotonic() - started}

    def worker(self) -> dict[str, float]:
        from idp.events.delivery import deliver_due
        from idp.maintenance.retention import purge_expired

        figures = {}
        with self.app.app_context():
            figures["worker: due-events round"] = median_ms(
                lambda: deliver_due(limit=50), self.repeat)
            started = time.perf_counter()
            purged = purge_expired()
            figures["worker: first retention round (ms)"] = (time.perf_counter() - started) * 1000
            self.purged = purged.summary()
        return figures

    # --- protocol --------------------------------------------------------------------------

    def protocol_operations(self) -> dict[str, Callable[[], Any]]:
        from idp.extensions import db
        from idp.oidc.clients import create_client
        from idp.wechat.apps import create_wechat_app

        control = self.wechat.control
        control.register_app(MINI_APPID, MINI_SECRET, kind="miniprogram")
        from idp.wechat.models import WeChatApp

        with self.app.app_context():
            if db.session.get(WeChatApp, MINI_APPID) is None:
                create_wechat_app("miniprogram", MINI_APPID, MINI_SECRET, name="Bench mini")
            client, _ = create_client(name="Bench mini", public=True, wechat_appid=MINI_APPID,
                                      grant_types=[TOKEN_EXCHANGE, "refresh_token"],
                                      scope="openid profile phone offline_access")
            client_id = client.client_id
            db.session.remove()
        browser = self.app.test_client()
        user = f"bench-user-{self.accounts}"

        def exchange() -> dict[str, Any]:
            code = control.issue_js_code(MINI_APPID, user=user).code
            response = browser.post("/oauth/token", data={
                "grant_type": TOKEN_EXCHANGE, "client_id": client_id, "subject_token": code,
                "subject_token_type": JS_CODE, "scope": "openid profile phone offline_access",
            })
            assert response.status_code == 200, response.get_json()
            return dict(response.get_json())

        tokens = exchange()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        def userinfo() -> None:
            assert browser.get("/oauth/userinfo", headers=bearer).status_code == 200

        refresh = {"token": tokens["refresh_token"]}

        def rotate() -> None:
            response = browser.post("/oauth/token", data={
                "grant_type": "refresh_token", "client_id": client_id,
                "refresh_token": refresh["token"]})
            assert response.status_code == 200, response.get_json()
            refresh["token"] = response.get_json()["refresh_token"]

        phones = iter(range(10**6))

        def bind_phone() -> None:
            phone = f"1350{self.accounts % 10}{next(phones):06d}"
            code = control.issue_phone_code(MINI_APPID, phone)
            fresh = exchange()  # a merge may end the tokens it was called with
            response = browser.post("/wechat/phone", json={"code": code}, headers={
                "Authorization": f"Bearer {fresh['access_token']}"})
            assert response.status_code == 200, response.get_json()

        return {
            "protocol: token exchange, returning user": exchange,
            "protocol: userinfo": userinfo,
            "protocol: refresh": rotate,
            "protocol: token exchange + phone binding": bind_phone,
        }

    def close(self, keep: bool) -> None:
        from idp.extensions import db

        with self.app.app_context():
            db.engine.dispose()
        if not keep:
            drop_database(self.database_url)


def table(results: dict[int, dict[str, float]], notes: dict[int, dict[str, Any]]) -> str:
    sizes = sorted(results)
    small, large = sizes[0], sizes[-1]
    lines = [
        "| operation | " + " | ".join(f"{size:,} accounts" for size in sizes) + " | growth |",
        "|---|" + "---:|" * len(sizes) + "---:|",
    ]
    for name in results[small]:
        cells = [f"{results[size][name]:,.1f}" for size in sizes]
        growth = results[large][name] / results[small][name] if results[small][name] else 0
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {growth:.2f}× |")
    lines.append("")
    for size in sizes:
        note = notes[size]
        seeded = "an earlier seed reused" if note["reused"] else (
            f"seeded in {note['seed_seconds']:.0f} s")
        lines.append(f"- {size:,} accounts: {seeded}; first retention round: {note['purged']}.")
    lines.append(
        f"- Web process RSS {notes[large]['rss_before']:.0f} → {notes[large]['rss_after']:.0f} MB"
        " across every admin page at both sizes.")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    content = README.read_text() if README.exists() else ""
    block = f"{MARKERS[0]}\n{text}\n{MARKERS[1]}"
    if MARKERS[0] in content:
        content = re.sub(re.escape(MARKERS[0]) + ".*?" + re.escape(MARKERS[1]), block, content,
                         flags=re.S)
    else:
        content += f"\n## Growth: 1k to 1M accounts (`make bench-scale`)\n\n{block}\n"
    README.write_text(content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, action="append",
                        help="sizes to seed (default 1000 and 1000000)")
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the seeded databases")
    parser.add_argument("--reuse", action="store_true",
                        help="measure databases kept by an earlier --keep run (no seeding)")
    parser.add_argument("--seed-only", action="store_true", help="seed (and keep), measure nothing")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    sizes = args.accounts or [1000, 1_000_000]

    from idp.wechat.fake import serve_in_thread

    wechat = serve_in_thread()
    results: dict[int, dict[str, float]] = {}
    notes: dict[int, dict[str, Any]] = {}
    benches: dict[int, Bench] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="idp-scale-") as workdir:
            for size in sizes:
                print(f"seeding {size:,} accounts …", flush=True)
                benches[size] = Bench(size, args.repeat, wechat, Path(workdir), reuse=args.reuse)
            if not args.seed_only:
                rss_before = rss_mb()
                results = alternating_medians(
                    {size: bench.admin_operations() for size, bench in benches.items()},
                    args.repeat)
                rss_after = rss_mb()
                protocol = alternating_medians(
                    {size: bench.protocol_operations() for size, bench in benches.items()},
                    args.repeat)
                for size, bench in benches.items():
                    results[size].update(protocol[size])
                    results[size].update(bench.report())
                    results[size].update(bench.worker())
                    notes[size] = {"seed_seconds": bench.seed_seconds, "purged": bench.purged,
                                   "reused": bench.reused}
                notes[max(sizes)].update(rss_before=rss_before, rss_after=rss_after)
                print(json.dumps(results, indent=1), flush=True)
    finally:
        for bench in benches.values():
            bench.close(args.keep or args.reuse or args.seed_only)
        wechat.shutdown()
    if args.seed_only:
        return
    text = table(results, notes)
    print(text)
    print(f"(peak RSS of this process: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    if args.json:
        print(json.dumps({"results": results, "notes": notes}))
    if args.write_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
