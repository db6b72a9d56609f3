"""Where each unit's machine time goes during a measured run: `perf record -a` (the `cpu-clock`
event, which samples every CPU at a fixed rate, idle or not) over the wrk run, each sample then
put in one part — the server's interpreter (CPython; node's V8 and JIT code), its crypto
(OpenSSL: cryptography's `_rust.abi3.so`, `libcrypto`, node's OpenSSL functions), its kernel
time, its other native code (libc, granian, psycopg, the json module...), PostgreSQL, Redis, wrk,
anything else, and the idle CPUs. A part's ms per unit = its share of the samples × CPUs ×
1,000 ÷ units per second.

Used by `bench/compare.py --where` (the scenario's first round, IdP and peer alike). Needs
`perf` (Debian's `linux-perf`) and the right to sample the whole machine (root here); without
them the table says so and the run goes on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

FREQUENCY = 999  # samples per second per CPU
PARTS = ("interpreter", "crypto", "kernel", "native", "postgres", "redis", "wrk", "other",
         "idle")
_LINE = re.compile(r"^\s*(?P<comm>.+?)\s+(?P<pid>\d+)\s+[0-9a-f]+\s+(?P<sym>.*?)\s+"
                   r"\((?P<dso>[^()]*)\)\s*$")
# OpenSSL's functions (node links OpenSSL into its own binary).
_CRYPTO_SYMBOL = re.compile(
    r"^(_?_?bn_|BN_|ossl_|rsaz|RSA_|rsa_|sha\d|SHA\d|aes|AES|gcm|GCM|EVP_|CRYPTO_|OPENSSL_|"
    r"ecp_|EC_|ChaCha|Poly1305|x25519)")
_CRYPTO_DSO = ("_rust.abi3.so", "libcrypto.so")
_INTERPRETER_DSO = ("libpython",)
_OTHER_SERVERS = {"postgres": "postgres", "redis-server": "redis", "wrk": "wrk",
                  "swapper": "idle"}


def available() -> str | None:
    """None when `perf` can sample the machine here, else why not."""
    if shutil.which("perf") is None:
        return "perf is not installed (Debian: linux-perf)"
    if os.geteuid() != 0:
        paranoid = Path("/proc/sys/kernel/perf_event_paranoid")
        if paranoid.exists() and int(paranoid.read_text().strip() or 2) > -1:
            return "sampling the whole machine needs root or kernel.perf_event_paranoid=-1"
    return None


class Recording:
    """`perf record -a` for `seconds`, begun now; `parts` when it has ended."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.path = path
        self.process = subprocess.Popen(
            ["perf", "record", "-a", "-e", "cpu-clock", "-F", str(FREQUENCY), "-o", str(path),
             "--", "sleep", f"{seconds:g}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def parts(self, server_pids: Iterable[int], units_per_second: float) -> dict[str, float]:
        """Each part's machine ms per unit (`PARTS`); empty when nothing was recorded."""
        self.process.wait()
        if not self.path.exists() or units_per_second <= 0:
            return {}
        script = subprocess.run(
            ["perf", "script", "-i", str(self.path), "-F", "comm,pid,ip,sym,dso"],
            capture_output=True, text=True, check=False).stdout
        counts = count(script.splitlines(), set(server_pids))
        self.path.unlink(missing_ok=True)
        total = sum(counts.values())
        if not total:
            return {}
        cpus = os.cpu_count() or 1
        return {part: counts[part] / total * cpus * 1000 / units_per_second for part in PARTS}


def count(lines: Iterable[str], server_pids: set[int]) -> Counter[str]:
    """Samples per part, from `perf script -F comm,pid,ip,sym,dso` lines."""
    counts: Counter[str] = Counter()
    for line in lines:
        match = _LINE.match(line)
        if match is None:
            continue
        if int(match["pid"]) in server_pids:
            counts[server_part(match["sym"], match["dso"])] += 1
        else:
            counts[_OTHER_SERVERS.get(match["comm"], "other")] += 1
    return counts


def server_part(symbol: str, dso: str) -> str:
    """The part of the server one sample belongs to."""
    if dso == "[kernel.kallsyms]" or dso.startswith("[kernel"):
        return "kernel"
    name = dso.rsplit("/", 1)[-1]
    if name.startswith(_CRYPTO_DSO) or _CRYPTO_SYMBOL.match(symbol):
        return "crypto"
    if name.startswith(_INTERPRETER_DSO):
        return "interpreter"
    if name == "node" or name.startswith(("perf-", "[JIT]", "[unknown]")) or name == "unknown":
        return "interpreter"  # V8 and the code it compiled
    return "native"


def table(rows: list[tuple[str, str, float, dict[str, float]]]) -> str:
    """One line per (scenario, server, units/s, parts)."""
    lines = [
        "| scenario | server | units/s | busy ms/unit | interpreter | crypto | kernel "
        "| other native | PostgreSQL | Redis | wrk | other | idle |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, server, units, parts in rows:
        if not parts:
            lines.append(f"| {scenario} | {server} | {units:,.0f} | – |" + " – |" * 9)
            continue
        busy = sum(value for part, value in parts.items() if part != "idle")
        lines.append(
            f"| {scenario} | {server} | {units:,.0f} | {busy:.2f} | "
            + " | ".join(f"{parts[part]:.2f}" for part in
                         ("interpreter", "crypto", "kernel", "native", "postgres", "redis",
                          "wrk", "other", "idle"))
            + " |")
    return "\n".join(lines)
