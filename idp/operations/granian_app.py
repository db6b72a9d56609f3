"""What each granian worker of `idp serve` loads: the app, tied to the life of its master.

Granian forks its workers from the master (`idp serve` execs it). Two things gunicorn did for
its workers are done here, in the worker itself:

- **Die with the master.** A worker whose master was killed (`kill -9`, OOM) would otherwise go
  on serving its own listening socket (granian binds one per worker with `SO_REUSEPORT`) and its
  keep-alive connections for ever, beside the restarted server. The kernel sends the worker
  `SIGTERM` when its master dies (`PR_SET_PDEATHSIG`); granian's worker then finishes its
  requests in flight and exits, so a restart finds the port free of orphans at once.
- **Leave clean at exit.** Buffered usage counts are written, and prometheus-client's live
  gauges of this process are dropped (its counters keep counting in the sum).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing.util
import os
import signal
from typing import Any

PR_SET_PDEATHSIG = 1
MASTER_PID_VARIABLE = "IDP_SERVE_MASTER_PID"


def die_with_master() -> None:
    """Ask the kernel for SIGTERM when the master dies; exit now if it already has.

    Until granian installs the worker's own (graceful) handlers after this loader returns, the
    worker carries the master's handlers, inherited through fork, which only set a flag in the
    master's copy of the server: a SIGTERM then would be swallowed and the worker would serve
    on as an orphan. While the app loads, SIGTERM and SIGINT therefore just end the worker (it
    serves nothing yet)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    master = os.environ.get(MASTER_PID_VARIABLE)
    # The master may have died between the fork and the prctl: then we have a new parent.
    if master and os.getppid() != int(master):
        os.kill(os.getpid(), signal.SIGTERM)


def _at_worker_exit() -> None:
    from idp.usage.counters import flush_all

    flush_all()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def load() -> Any:
    """The WSGI app of one worker (granian `--factory` target)."""
    if os.environ.get(MASTER_PID_VARIABLE):
        die_with_master()
    from idp import create_app

    app = create_app()
    # multiprocessing runs its finalizers when a worker's target returns (granian's graceful
    # stop), where `atexit` handlers would not run: the child leaves through os._exit.
    multiprocessing.util.Finalize(None, _at_worker_exit, exitpriority=10)
    return app
