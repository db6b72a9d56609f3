"""Instructions per request, counted, not timed: a machine whose CPU time drifts ±20 % between
runs of the same code (a shared VM) cannot show a 5 % change by timing; the instructions a
request executes can. Runs a profiling script under callgrind, collecting only inside its
measured loop (`counted`, which runs the loop inside `functools.reduce`, a C function the
loop alone calls), and prints the instructions per request: all of them, and those outside
the RSA signatures (cryptography's library, the same for every version of our code), by
object file.

    .venv/bin/python bench/instructions.py 50 -- bench/profile_token.py --postgres \\
        --redis-url redis://127.0.0.1:6379/13 --only refresh_token --requests 50
    .venv/bin/python bench/instructions.py 50 -- bench/profile_exchange.py --postgres \\
        --no-profile --logins 50

Under valgrind OpenSSL takes its AVX2 path (valgrind has no AVX-512), so the signatures'
count is not the machine's; the rest is. The kernel's work (syscalls) is not counted: a
round trip saved shows in timing, not here.
"""

from __future__ import annotations

import argparse
import collections
import functools
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SIGNATURES = "_rust.abi3.so"  # cryptography's bindings: the RSA arithmetic
TOGGLE = "functools_reduce"


def counted(step: Callable[[Any], Any], items: Iterable[Any]) -> None:
    """`step` of each item, inside `functools.reduce`: what callgrind collects with
    `--toggle-collect=functools_reduce`."""
    functools.reduce(lambda _, item: step(item), items, None)


def by_object(profile: Path) -> collections.Counter[str]:
    """Instructions (Ir, self) per object file of a callgrind output."""
    totals: collections.Counter[str] = collections.Counter()
    names: dict[str, str] = {}
    current = "?"
    in_call = False
    for line in profile.read_text(errors="replace").splitlines():
        if line.startswith(("ob=", "cob=")):  # an object named (compressed: "(n) name" once)
            match = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line)
            name = line.partition("=")[2]
            if match:
                if match.group(2):
                    names[match.group(1)] = match.group(2)
                name = names.get(match.group(1), "?")
            if line.startswith("ob="):
                current = name
        elif line.startswith("calls="):
            in_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if in_call:  # the call's inclusive cost line: not this object's own
                in_call = False
                continue
            parts = line.split()
            if len(parts) >= 2:
                totals[Path(current).name] += int(parts[1])
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requests", type=int, help="how many requests the measured loop runs")
    parser.add_argument("--keep", type=Path, help="also copy callgrind's output here")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- the script and its arguments (run with this Python)")
    args = parser.parse_args()
    command = [part for part in args.command if part != "--"]
    with tempfile.TemporaryDirectory(prefix="idp-instructions-") as directory:
        out = Path(directory) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--toggle-collect={TOGGLE}",
                        f"--callgrind-out-file={out}", sys.executable, *command],
                       check=True, stdout=subprocess.DEVNULL)
        objects = by_object(out)
        if args.keep:
            shutil.copyfile(out, args.keep)
    total = sum(objects.values())
    outside = total - objects[SIGNATURES]
    print(f"{total / args.requests:,.0f} instructions per request; "
          f"{outside / args.requests:,.0f} outside the signatures")
    for name, count in objects.most_common(12):
        print(f"  {count / args.requests:>12,.0f}  {name}")


if __name__ == "__main__":
    main()
