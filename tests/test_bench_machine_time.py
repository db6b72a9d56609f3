"""bench/machine_time.py, which `bench/compare.py --where` uses to say where each unit's machine
time goes: each `perf script` sample lands in one part (no timing here: lines as perf prints
them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent.parent / "bench" / "machine_time.py"


def machine_time() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_machine_time", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LINES = [
    # the server (pid 100): crypto, CPython, kernel, other native code
    "tokio-rt-worker   100      7f0 ossl_rsaz_amm52x20_x2_ifma256 (/v/lib/cryptography/"
    "hazmat/bindings/_rust.abi3.so)",
    "tokio-rt-worker   100      7f1 _PyEval_EvalFrameDefault (/usr/lib/libpython3.11.so.1.0)",
    "         python3   100 ffffffff81 tcp_sendmsg ([kernel.kallsyms])",
    "tokio-rt-worker   100      7f2 __memmove_avx512_unaligned_erms (/usr/lib/libc.so.6)",
    # node: OpenSSL inside its binary, V8's compiled code, the rest of the binary
    "            node   200      7f3 bn_mul_mont (/usr/bin/node)",
    "            node   200      7f4 [unknown] ([unknown])",
    "            node   200      7f5 uv__io_poll (/usr/bin/node)",
    # everything else, by command
    "        postgres   300      7f6 hash_search_with_hash_value (/usr/lib/postgresql/postgres)",
    "    redis-server   301      7f7 dictFind (/usr/bin/redis-server)",
    "             wrk   302      7f8 lj_BC_CALL (/usr/lib/libluajit-5.1.so.2.1.0)",
    "         swapper     0 ffffffff82 pv_native_safe_halt ([kernel.kallsyms])",
    "       beam.smp   303      7f9 erts_schedule (/usr/lib/erlang/beam.smp)",
    "not a sample line",
]


def test_each_sample_lands_in_one_part() -> None:
    counts = machine_time().count(LINES, {100, 200})
    assert dict(counts) == {"crypto": 2, "interpreter": 3, "kernel": 1, "native": 1,
                            "postgres": 1, "redis": 1, "wrk": 1, "idle": 1, "other": 1}


def test_the_table_gives_busy_time_apart_from_idle() -> None:
    module = machine_time()
    parts = dict.fromkeys(module.PARTS, 0.1)
    text = module.table([("refresh_token", "IdP", 1000.0, parts), ("jwks", "peer", 5.0, {})])
    assert "| refresh_token | IdP | 1,000 | 0.80 | 0.10 |" in text
    assert "| jwks | peer | 5 | – |" in text
