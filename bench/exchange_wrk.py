"""The token-exchange scenario of `bench/compare.py` alone, on free ports: the IdP (`idp serve`
defaults, PostgreSQL + Redis) and the fake WeChat (granian, one worker) only — no peer, no floor
server — so it can run beside another benchmark. Same instance set-up, same wrk script, same
figures (logins/s, p50/p99, the server's CPU ms per login).

    .venv/bin/python bench/exchange_wrk.py --redis-url redis://127.0.0.1:6392/3 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402
import run as single  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get(
        "IDP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "IDP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, help="idp serve --workers (default: its own)")
    args = parser.parse_args()
    args.postgres = True
    wrk = compare.ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="idp-exchange-"))
    codes_per_run = int(args.duration + args.warmup) * 3000
    idp = None
    try:
        with single.database(args, workdir) as db_env:
            idp = compare.prepare_idp(workdir, db_env, codes_per_run * args.rounds)
            single.start_server(idp.instance, compare.single_args(args), workdir / "serve.log")
            compare.wait_ready(idp.fake_url + "/__fake__/calls", idp.fake,
                               workdir / "fake-wechat.log", "fake WeChat")
            row = compare.Row("token_exchange")
            for _ in range(args.rounds):
                figures = compare.measure(
                    wrk, lambda: compare.idp_run("token_exchange", idp, args.connections,
                                                 codes_per_run // 2),
                    idp.instance.server.pid, args, workdir)
                assert figures is not None
                row.idp.append(figures)
                print(f"token_exchange: {figures.units:,.0f} logins/s, p50 / p99 "
                      f"{figures.p50:.1f} / {figures.p99:.1f} ms, {figures.cpu_ms:.2f} CPU ms "
                      f"per login, {figures.bad + figures.errors} failed", flush=True)
            print(compare.table([row]))
    finally:
        if idp is not None:
            single.stop_server(idp.instance)
            compare.stop(idp.fake)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
