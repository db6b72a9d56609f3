"""deploy/kubernetes: `kubectl kustomize` renders the base and the example overlay, every
manifest is valid for current Kubernetes versions (kubernetes-validate, strict), and what the
manifests say matches the app: setting names, secret files, the port, probe paths, commands,
the drain time. Skipped, with the reason, without a kubectl whose kustomize is v5 or later."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from idp.operations.granian_main import GRACEFUL_SECONDS
from tests.container.manifests import (
    KUBERNETES,
    SECRETS_DIRECTORY,
    containerfile_exposed_port,
    containerfile_healthcheck_url,
    containers,
    option,
    quantity_mebibytes,
    setting_names,
    workload,
)

# The newest schemas kubernetes-validate ships, and the oldest release we document (1.30).
KUBERNETES_VERSIONS = (kubernetes_validate.latest_version(), "1.30.0")
SECRET_FILES = ("secret-key", "encryption-key", "data-keys", "blind-index-keys",
                "metrics-token", "database-url", "redis-url",
                "amqp-url")  # fmt: skip


def kustomize_skip_reason() -> str | None:
    if shutil.which("kubectl") is None:
        return "kubectl not installed (.ci/run installs Debian's kubernetes-client)"
    result = subprocess.run(["kubectl", "version", "--client", "-o", "json"],
                            capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    version = json.loads(result.stdout or "{}").get("kustomizeVersion", "")
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 5:
        return (f"kubectl's kustomize ({version or 'version not reported'}) is older than v5, "
                "which the manifests need (kubectl 1.27+; Debian bookworm's kubernetes-client "
                "1.20 embeds kustomize v2)")
    return None


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr  # no deprecated field
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The base and the example overlay, with the Secret's files an operator creates."""
    reason = kustomize_skip_reason()
    if reason:
        pytest.skip(reason)
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    for name in SECRET_FILES:
        (copy / "overlays" / "example" / "secrets" / name).write_text(f"example-{name}\n")
    return {"base": kustomize(copy / "base"), "example": kustomize(copy / "overlays" / "example")}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", ["base", "example"])
def test_every_rendered_manifest_is_valid_for_kubernetes(
    rendered: dict[str, list[dict[str, Any]]], variant: str, version: str
) -> None:
    for resource in rendered[variant]:
        kubernetes_validate.validate(resource, version, strict=True)


def test_the_overlay_holds_every_part_of_a_deployment(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    kinds = sorted(f"{r['kind']}/{r['metadata']['name']}" for r in rendered["example"])
    assert [k for k in kinds if not k.startswith(("ConfigMap/", "Secret/"))] == [
        "Deployment/idp-web", "Deployment/idp-worker", "HorizontalPodAutoscaler/idp-web",
        "Ingress/idp", "Job/idp-db-upgrade", "Namespace/idp", "PodDisruptionBudget/idp-web",
        "Service/idp", "ServiceAccount/idp",
    ]  # fmt: skip
    assert {r["metadata"].get("namespace") for r in rendered["example"]} == {None, "idp"}


def test_every_environment_name_is_a_setting_of_the_app(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    known = setting_names()
    used = set(workload(rendered["example"], "ConfigMap", next(
        r["metadata"]["name"] for r in rendered["example"] if r["kind"] == "ConfigMap"
    ))["data"])  # fmt: skip
    for name, container in containers(rendered["example"]).items():
        used |= {variable["name"] for variable in container.get("env", [])}
        assert container["envFrom"][0]["configMapRef"]["name"].startswith("idp-config"), name
    assert used and not used - known, sorted(used - known)


def test_secret_files_are_keys_of_the_secret_and_the_app_reads_them(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    (secret,) = [r for r in rendered["example"] if r["kind"] == "Secret"]
    for name, container in containers(rendered["example"]).items():
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["secrets"] == SECRETS_DIRECTORY, name
        files = [v for v in container["env"] if v["name"].endswith("_FILE")]
        assert files, name
        for variable in files:
            directory, key = variable["value"].rsplit("/", 1)
            assert directory == SECRETS_DIRECTORY and key in secret["data"], variable
        # Nothing secret as a plain value: secrets are files.
        assert not [v for v in container["env"] if "value" in v and not v["name"].endswith(
            "_FILE")], name  # fmt: skip


def test_port_probes_and_healthcheck_are_the_apps(
    rendered: dict[str, list[dict[str, Any]]], app_routes: set[str]
) -> None:
    resources = rendered["example"]
    web = containers(resources)["idp-web/idp"]
    (port,) = web["ports"]
    assert port["containerPort"] == int(option(web["args"], "--port")) == (
        containerfile_exposed_port()
    )
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert web["startupProbe"]["httpGet"]["path"] in app_routes
    assert {"/readyz", "/healthz"} <= app_routes
    assert containerfile_healthcheck_url() == f"http://127.0.0.1:{port['containerPort']}/readyz"
    service = workload(resources, "Service", "idp")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    ingress = workload(resources, "Ingress", "idp")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "idp", "port": {"name": service["spec"]["ports"][0]["name"]}}
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    from idp import create_app

    tmp = tmp_path_factory.mktemp("routes")
    app = create_app({"TESTING": True, "IDP_INSTANCE_PATH": str(tmp),
                      "IDP_DATABASE_URL": f"sqlite:///{tmp / 'routes.sqlite3'}"})  # fmt: skip
    return {rule.rule for rule in app.url_map.iter_rules()}


def test_every_container_command_is_an_idp_command(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.cli import main

    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("IDP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("IDP_LOG_JSON", "false")  # leave pytest's logging as it is
    commands = {name: c["args"] for name, c in containers(rendered["example"]).items()}
    assert commands["idp-db-upgrade/db-upgrade"] == ["db", "upgrade"]
    assert commands["idp-worker/worker"] == ["worker"]
    for name, args in commands.items():
        # The image's entrypoint is `idp`: its arguments must parse (--help: nothing runs).
        result = CliRunner().invoke(main, [*args, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, (name, result.output)


def test_termination_grace_covers_the_prestop_pause_and_the_servers_drain(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    web = workload(rendered["example"], "Deployment", "idp-web")["spec"]["template"]["spec"]
    (container,) = web["containers"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert web["terminationGracePeriodSeconds"] >= pause + GRACEFUL_SECONDS


def test_web_pods_scale_and_survive_disruptions_together(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    resources = rendered["example"]
    web = workload(resources, "Deployment", "idp-web")
    labels = web["spec"]["template"]["metadata"]["labels"]
    hpa = workload(resources, "HorizontalPodAutoscaler", "idp-web")
    pdb = workload(resources, "PodDisruptionBudget", "idp-web")
    service = workload(resources, "Service", "idp")
    assert web["spec"]["replicas"] >= 2 and hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "idp-web"}  # fmt: skip
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    for selector in (web["spec"]["selector"]["matchLabels"], pdb["spec"]["selector"][
            "matchLabels"], service["spec"]["selector"]):  # fmt: skip
        assert selector.items() <= labels.items()
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # One granian worker per CPU of the limit, not of the node (granian's default).
    (container,) = web["spec"]["template"]["spec"]["containers"]
    assert int(option(container["args"], "--workers")) <= float(
        container["resources"]["limits"]["cpu"])
    assert quantity_mebibytes(container["resources"]["requests"]["memory"]) <= (
        quantity_mebibytes(container["resources"]["limits"]["memory"]))


def test_pods_run_as_the_images_non_root_user_read_only(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for resource in rendered["example"]:
        if resource["kind"] not in ("Deployment", "Job"):
            continue
        pod = resource["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # Containerfile: USER 10001
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/var/lib/idp", "/tmp"} <= mounts  # noqa: S108 - IDP_INSTANCE_PATH, /tmp


def test_the_deployment_guide_names_every_setting_the_manifests_use(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    guide = (KUBERNETES.parents[1] / "docs" / "DEPLOYMENT.md").read_text()
    used = {v["name"] for c in containers(rendered["example"]).values() for v in c["env"]}
    assert not [name for name in sorted(used) if name not in guide]
