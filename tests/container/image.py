"""The image under test: built from the repository's Containerfile with buildah on a local
Debian base, and processes run from it with `buildah run --isolation chroot --network host`.

Podman's `run` cannot set rlimits in this sandbox and registries are out of reach, so this is
the closest to a container runtime the test machines offer: the image's own file system, user,
environment and entrypoint's commands, with the host's loopback services.

Caches, so that a repeat run takes seconds to build: the Debian base image (its root file
system is kept under IDP_IMAGE_CACHE, default /var/cache/idp-image-base, and re-imported without
a second debootstrap) and buildah's layer cache (`--layers`: the dependencies' layers are reused
until requirements.lock changes, and a code change rebuilds only the project's small layer).
pip's cache does not survive here: buildah 1.28 keeps no `--mount=type=cache` between builds,
and a `--volume` bind is not written through beside the `ca` secret mount (tried), so a new lock
downloads every wheel again (about 4 minutes on the test machines).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("IDP_IMAGE_CACHE", "/var/cache/idp-image-base"))
BASE_IMAGE = "localhost/idp-debian-python:bookworm"
CACHED_TAG = "localhost/idp:test-cache"
BUILD_SECONDS = 1800  # a cold build downloads every wheel


def image_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "building and running images with buildah's chroot isolation needs root"
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (.ci/run installs them with apt-get)"
    return None


def buildah(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        ["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"buildah {args[0]} failed: {result.stderr[-3000:]}")
    return result.stdout


def ensure_base_image() -> float:
    """The local stand-in for python:3.11-slim-bookworm; seconds it took (0 when cached)."""
    started = time.monotonic()
    subprocess.run(
        [str(REPO / "deploy" / "debian-base-image.sh"), BASE_IMAGE],
        check=True, timeout=BUILD_SECONDS, capture_output=True,
        env={**os.environ, "IDP_IMAGE_CACHE": str(CACHE)},
    )  # fmt: skip
    return time.monotonic() - started


def build_image(tag: str, log: Path) -> float:
    """`buildah bud` of the Containerfile; seconds it took. The TLS CA that this machine's
    registries need is a build secret, used by pip only (never in a layer: test_image checks)."""
    command = [
        "buildah", "bud", "--isolation", "chroot", "--layers", "--format", "docker",
        "--build-arg", f"BASE={BASE_IMAGE}",
        # A second, stable tag keeps the image (and so buildah's cache of its last steps) after
        # the run's own tag is removed: the next run's build is then a few seconds.
        "--tag", tag, "--tag", CACHED_TAG, "--file", str(REPO / "Containerfile"),
    ]  # fmt: skip
    ca = os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT")
    if ca and Path(ca).is_file():
        command += ["--secret", f"id=ca,src={ca}"]
    started = time.monotonic()
    with log.open("wb") as output:
        result = subprocess.run(
            [*command, str(REPO)], stdout=output, stderr=subprocess.STDOUT,
            timeout=BUILD_SECONDS, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"buildah bud failed:\n{log.read_text()[-4000:]}")
    return time.monotonic() - started


def run_argv(
    container: str, command: list[str], env: dict[str, str], volumes: dict[Path, str]
) -> list[str]:
    """`buildah run` of `command` in `container` as the image's user, on the host's network."""
    argv = ["buildah", "run", "--isolation", "chroot", "--network", "host"]
    for source, target in volumes.items():
        argv += ["--volume", f"{source}:{target}:ro"]
    for name, value in env.items():
        argv += ["--env", f"{name}={value}"]
    return [*argv, container, "--", *command]
