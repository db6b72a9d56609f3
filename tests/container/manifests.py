"""What the deployment files say, read for the drift tests: the app's setting names, commands
and routes on one side; deploy/kubernetes, deploy/compose.yaml and the Containerfile on the
other."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.container.image import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
COMPOSE = REPO / "deploy" / "compose.yaml"
CONTAINERFILE = REPO / "Containerfile"
SECRETS_DIRECTORY = "/run/secrets/idp"


def setting_names() -> set[str]:
    """Every name the app reads from the environment, and its `_FILE` form."""
    from idp.config import ENVIRONMENT_NAMES, FILE_SUFFIX
    from idp.sms.settings import ENVIRONMENT_NAMES as SMS_NAMES

    names = {*ENVIRONMENT_NAMES, *SMS_NAMES}
    return names | {f"{name}{FILE_SUFFIX}" for name in names}


def containers(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`<workload>/<container>` -> the container, for every Deployment and Job."""
    found = {}
    for resource in resources:
        if resource["kind"] in ("Deployment", "Job"):
            for container in resource["spec"]["template"]["spec"]["containers"]:
                found[f"{resource['metadata']['name']}/{container['name']}"] = container
    return found


def workload(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def base_resources() -> list[dict[str, Any]]:
    """The base's files as written (no kubectl needed)."""
    resources = []
    for path in sorted((KUBERNETES / "base").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            resources.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return resources


def memory_limit_mebibytes(deployment: str) -> float:
    (container,) = workload(base_resources(), "Deployment", deployment)["spec"]["template"][
        "spec"]["containers"]
    return quantity_mebibytes(container["resources"]["limits"]["memory"])


def quantity_mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return float(number) * (1024 if unit == "Gi" else 1)


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def containerfile_exposed_port() -> int:
    return int(re.search(r"^EXPOSE (\d+)$", CONTAINERFILE.read_text(), re.M).group(1))  # type: ignore[union-attr]


def containerfile_healthcheck_url() -> str:
    match = re.search(r"^HEALTHCHECK .*?(http://[^'\"]+)", CONTAINERFILE.read_text(), re.M | re.S)
    assert match, "no HEALTHCHECK with a URL in the Containerfile"
    return match.group(1)
