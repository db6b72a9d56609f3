"""requirements.lock, which the image installs with --require-hashes, agrees with pyproject.toml:
every runtime dependency is pinned, at a version its specifier allows, with hashes. (`make lock`
regenerates it; the in-image tests prove it installs and imports.)"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.container.image import REPO


def pinned() -> dict[str, str]:
    text = (REPO / "requirements.lock").read_text()
    blocks = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)(.*?)(?=^\S|\Z)", text, re.M | re.S)
    for name, _, rest in blocks:
        assert "--hash=sha256:" in rest, f"{name} is pinned without a hash"
    return {canonicalize_name(name): version for name, version, _ in blocks}


def test_every_runtime_dependency_is_pinned_within_its_specifier() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    versions = pinned()
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in versions, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(versions[name], prereleases=True), (
            f"{name}=={versions[name]} does not satisfy {requirement.specifier}: run `make lock`"
        )


def test_the_lock_holds_no_test_tool() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]["test"]
    tools = {canonicalize_name(Requirement(line).name) for line in extras}
    assert not tools & set(pinned())
