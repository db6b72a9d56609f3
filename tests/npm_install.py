"""`npm ci` for a test's Node project, once per lock-file version, one process at a time: the
suite's pytest-xdist workers may reach the same project together."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path


class NpmUnavailable(Exception):
    """npm is missing, or `npm ci` failed (the registry cannot be reached)."""


def npm_ci(project: Path) -> Path:
    """The project's node_modules, installed from its package-lock.json when that changed."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise NpmUnavailable("node and npm are not installed (.ci/run installs them)")
    modules = project / "node_modules"
    marker = modules / ".installed-lock"
    lock = (project / "package-lock.json").read_text()
    with open(project / ".npm-ci.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text() == lock:
            return modules
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=project, capture_output=True, text=True, timeout=300, check=False,
        )
        if result.returncode != 0:
            raise NpmUnavailable(f"`npm ci` in {project} failed: {result.stderr.strip()[-300:]}")
        marker.write_text(lock)
    return modules
