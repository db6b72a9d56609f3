"""`idp data encrypt` over a database seeded in plain text, timed, while people sign in by
phone (issue 28 item 3: "measured at 1M accounts with the scale benchmark: time, and that login
by phone works throughout").

    python bench/scale.py --accounts 1000000 --seed-only     # a plain database, kept
    python bench/scale_encrypt.py --accounts 1000000          # encrypts it, kept for --reuse
    python bench/scale.py --accounts 1000000 --reuse          # the figures, encrypted

The database is bench/scale.py's (`idp_scale_<accounts>`, seeded if absent, migrated to head:
the seed writes identities in plain text, as a database from before encryption holds them).
The job runs as the operator runs it, `idp data encrypt`, in a process of its own. Meanwhile this
process signs in over and over with the website's SMS-code sign-in (in-process, the development
SMS sender) to random seeded accounts: a sign-in counts as good only when it lands in the
account that holds the phone, whether its row is still plain or already encrypted (a missed
lookup would silently make a new account). Nothing is dropped: measure it after with --reuse.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale import Bench  # noqa: E402
from bench.scale_seed import account_id  # noqa: E402


def signs_in_by_phone(number: int) -> bool:
    """Seeded account `number` is active and holds its phone verified, alone (scale_seed.py:
    phones on i % 10 != 9, verified on i % 20 != 0, active from i % 100 >= 5, and around
    i % 1000 == 7 another account has typed the phone in)."""
    return (number % 10 != 9 and number % 20 != 0 and number % 100 >= 5
            and number % 1000 not in (7, 8))


def seeded_phone(number: int) -> str:
    return f"+86136{number:08d}"


@dataclass
class Probe:
    """What the sign-ins saw: each one's latency, and where it landed."""

    latencies_ms: list[float] = field(default_factory=list)
    into_plain_rows: int = 0
    into_encrypted_rows: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms) or [0.0]
        return {
            "sign-ins": len(self.latencies_ms),
            "failures": len(self.failures),
            "into plain rows": self.into_plain_rows,
            "into encrypted rows": self.into_encrypted_rows,
            "median ms": round(statistics.median(ordered), 1),
            "p99 ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
            "max ms": round(ordered[-1], 1),
            "first failures": self.failures[:5],
        }


def phone_sign_in(bench: Bench) -> Callable[[int], bool | None]:
    """Signs in to seeded account `number` by SMS code as a browser does; returns whether the
    phone's row was encrypted (None: the sign-in failed or landed elsewhere)."""
    from idp import create_app
    from idp.extensions import db
    from idp.identity.models import Identity, IdentityKind, LoginSession

    # TESTING keeps the development sender from printing every code; the form posts without
    # the CSRF round trip, which is not what is measured.
    app = create_app({**bench.env, "TESTING": True, "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False, "IDP_THROTTLE_ENABLED": False})
    sender = app.extensions["idp_sms"]

    def sign_in(number: int) -> bool | None:
        phone = seeded_phone(number)
        browser = app.test_client()
        if browser.post("/login/sms/send", data={"phone": phone}).status_code != 302:
            return None
        code = sender.last_code(phone)
        sender.outbox.clear()
        done = browser.post("/login/sms", data={"phone": phone, "code": code,
                                                "accept_terms": "y"})
        if done.status_code != 302:
            return None
        with browser.session_transaction() as session:
            sid = session.get("idp_sid")
        with app.app_context():
            row = db.session.get(LoginSession, sid)
            landed = row is not None and row.account_id == account_id(number)
            sealed = db.session.execute(
                sa.select(Identity.sealed_value.is_not(None)).where(
                    Identity.account_id == account_id(number), Identity.kind == IdentityKind.PHONE,
                    Identity.verified)).scalar()
            db.session.remove()
        return bool(sealed) if landed else None

    return sign_in


def table_timings(lines: IO[str], timings: dict[str, list[float]]) -> None:
    """Reads the job's progress lines ("identity: batch to id 500 committed, 500 rewritten"):
    per table, in the job's order, when its last batch committed and the rows it rewrote."""
    for line in lines:
        table, _, rest = line.partition(": batch to id ")
        if rest:
            entry = timings.setdefault(table, [0.0, 0])
            entry[0] = time.monotonic()
            entry[1] += int(rest.split(", ")[1].split()[0])


def per_table(timings: dict[str, list[float]], started: float) -> dict[str, dict[str, Any]]:
    """Each table's time runs from the previous table's last commit (the first's from the
    job's start, its process's start-up included)."""
    figures = {}
    for name, (finished, rows) in timings.items():
        seconds = finished - started
        figures[name] = {"rows rewritten": int(rows), "seconds": round(seconds, 1),
                         "rows rewritten/s": round(rows / seconds) if rows else None}
        started = finished
    return figures


def encrypt_while_signing_in(bench: Bench, batch_size: int, pause: float) -> dict[str, Any]:
    sign_in = phone_sign_in(bench)
    numbers: Iterator[int] = (n for n in iter(lambda: random.randint(1, bench.accounts), 0)
                              if signs_in_by_phone(n))
    for _ in range(3):
        sign_in(next(numbers))  # warm-up: templates, a first connection
    probe = Probe()
    idp = Path(sys.executable).parent / "idp"
    timings: dict[str, list[float]] = {}
    started = time.monotonic()
    job = subprocess.Popen([str(idp), "data", "encrypt", "--batch-size", str(batch_size)],
                           env={**os.environ, **bench.env}, stdout=subprocess.PIPE,
                           text=True)
    reader = threading.Thread(target=table_timings, args=(job.stdout, timings), daemon=True)
    reader.start()
    while job.poll() is None:
        number = next(numbers)
        call_started = time.perf_counter()
        try:
            sealed = sign_in(number)
        except Exception as error:  # noqa: BLE001 — every failure is counted, none stops it
            sealed, reason = None, repr(error)
        else:
            reason = f"account {number}: no sign-in into its account"
        probe.latencies_ms.append((time.perf_counter() - call_started) * 1000)
        if sealed is None:
            probe.failures.append(reason)
        elif sealed:
            probe.into_encrypted_rows += 1
        else:
            probe.into_plain_rows += 1
        time.sleep(pause)
    seconds = time.monotonic() - started
    reader.join()
    if job.returncode != 0:
        raise SystemExit(f"idp data encrypt exited with {job.returncode}")
    return {"accounts": bench.accounts, "batch size": batch_size,
            "job seconds": round(seconds, 1),
            "tables": per_table(timings, started),
            "identities left plain": plain_identities(bench),
            "probe": probe.summary()}


def plain_identities(bench: Bench) -> int:
    from idp.extensions import db
    from idp.identity.models import Identity, IdentityKind

    with bench.app.app_context():
        left = db.session.execute(sa.select(sa.func.count()).where(
            Identity.kind.in_(IdentityKind.PERSONAL), Identity.sealed_value.is_(None))).scalar()
        db.session.remove()
    return int(left or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--pause", type=float, default=0.05,
                        help="seconds between two sign-ins (default 0.05)")
    args = parser.parse_args()

    from idp.wechat.fake import serve_in_thread

    wechat = serve_in_thread()
    bench = None
    try:
        with tempfile.TemporaryDirectory(prefix="idp-scale-") as workdir:
            bench = Bench(args.accounts, 1, wechat, Path(workdir), reuse=True)
            print(json.dumps(encrypt_while_signing_in(bench, args.batch_size, args.pause),
                             indent=1, ensure_ascii=False), flush=True)
    finally:
        if bench is not None:
            bench.close(keep=True)
        wechat.shutdown()


if __name__ == "__main__":
    main()
