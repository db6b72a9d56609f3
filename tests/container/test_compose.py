"""deploy/compose.yaml, parsed and checked like the Kubernetes manifests: the five services,
start in order of health, setting names the app knows, the port, the health check and commands
of the image. (No compose tool runs here: it would need an image registry.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from idp.operations.granian_main import GRACEFUL_SECONDS
from tests.container.manifests import (
    COMPOSE,
    containerfile_exposed_port,
    containerfile_healthcheck_url,
    option,
    setting_names,
)

IDP_SERVICES = ("migrate", "idp", "worker")
BACKING_SERVICES = ("postgres", "redis", "rabbitmq")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def test_the_services_of_the_production_shape(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {*IDP_SERVICES, *BACKING_SERVICES}
    for name in IDP_SERVICES:
        service = compose["services"][name]
        assert service["build"] == {"context": "..", "dockerfile": "Containerfile"}, name
        assert (COMPOSE.parent / service["build"]["context"] / "Containerfile").is_file()


def test_start_order_follows_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in BACKING_SERVICES:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"  # one-shot
    for name in ("idp", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert {depends[s]["condition"] for s in ("redis", "rabbitmq")} == {"service_healthy"}


def test_environment_names_are_settings_and_secrets_are_files(compose: dict[str, Any]) -> None:
    known = setting_names()
    declared = compose["secrets"]
    for name in IDP_SERVICES:
        service = compose["services"][name]
        environment = service["environment"]
        assert not set(environment) - known, sorted(set(environment) - known)
        for variable in ("IDP_SECRET_KEY", "IDP_ENCRYPTION_KEY", "IDP_DATA_KEYS",
                         "IDP_BLIND_INDEX_KEYS"):
            assert variable not in environment
            path = environment[f"{variable}_FILE"]
            assert path.startswith("/run/secrets/") and path.rsplit("/", 1)[1] in service[
                "secrets"]  # fmt: skip
        for secret in service["secrets"]:
            assert declared[secret]["file"].startswith("./secrets/")
    # The secret files stay out of git.
    assert "*" in (COMPOSE.parent / "secrets" / ".gitignore").read_text().split()


def test_port_health_check_and_commands_are_the_images(
    compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.cli import main

    idp = compose["services"]["idp"]
    port = int(option(idp["command"], "--port"))
    assert port == containerfile_exposed_port()
    assert idp["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert containerfile_healthcheck_url() in idp["healthcheck"]["test"][-1]
    assert int(idp["stop_grace_period"].removesuffix("s")) > GRACEFUL_SECONDS
    assert idp["environment"]["IDP_ISSUER"] == f"http://127.0.0.1:{port}"

    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("IDP_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("IDP_LOG_JSON", "false")  # leave pytest's logging as it is
    for name in IDP_SERVICES:
        result = CliRunner().invoke(main, [*compose["services"][name]["command"], "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, (name, result.output)
