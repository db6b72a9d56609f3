"""The container image, end to end: built from the Containerfile on the local Debian base, then
`idp db upgrade`, `idp serve` and `idp worker` run from it against the host's PostgreSQL (a
private database), Redis and RabbitMQ, with the shipped fake WeChat on loopback.

One module, so that `--dist loadfile` keeps it on one xdist worker: the image is built once per
run, not per backend (the image has no SQLite story to test). Skipped, with the reason, without
root, buildah or debootstrap, or when a service does not answer.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from idp.wechat.fake import FakeWeChatServer, serve_in_thread
from tests.conftest import POSTGRES_SKIP_REASON, create_database, drop_database
from tests.container.image import (
    REPO,
    build_image,
    buildah,
    ensure_base_image,
    image_skip_reason,
    run_argv,
)
from tests.events.amqp_helpers import AMQP_URL, Broker, broker_skip_reason
from tests.production.conftest import (
    PASSWORD,
    PHONE,
    REDIRECT_URI,
    authorization_code,
    browser_login,
    lasting_port,
    redeem,
    redis_skip_reason,
)
from tests.redis_db import redis_url

IMAGE_USER_ID = 10001  # Containerfile: USER 10001:10001
MINI_APPID = "wxa0000000000000c1"
MINI_SECRET = "container-mini-secret-0123456789"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JS_CODE = "urn:wechat:params:oauth:token-type:js_code"
SECRETS_IN_CONTAINER = "/run/secrets/idp"
STARTUP_SECONDS = 60
LONG_POLL_SECONDS = 5


@dataclass
class Deployment:
    """The image, its containers and what runs from them."""

    image: str
    url: str
    env: dict[str, str]
    secrets: Path
    secret_values: list[str]
    logs: Path
    fake: FakeWeChatServer
    broker: Broker
    containers: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    client_id: str = ""
    client_secret: str = ""
    mini_client_id: str = ""
    sub: str = ""

    def argv(self, role: str, *command: str) -> list[str]:
        return run_argv(self.containers[role], ["idp", *command], self.env,
                        {self.secrets: SECRETS_IN_CONTAINER})  # fmt: skip

    def cli(self, *command: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            self.argv("cli", *command), input=stdin, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"idp {' '.join(command)}: {result.stderr[-2000:]}"
        return result.stdout

    def start(self, role: str, *command: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{role}.log").open("wb") as log:
            process = subprocess.Popen(
                self.argv(role, *command), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.processes[role] = process
        return process


def skip_reason() -> str | None:
    return image_skip_reason() or POSTGRES_SKIP_REASON or redis_skip_reason() or (
        broker_skip_reason()
    )


def write_secret(directory: Path, name: str, value: str) -> None:
    """As a Kubernetes Secret volume would: a file the image's user alone may read."""
    path = directory / name
    path.write_text(value + "\n")
    os.chown(path, IMAGE_USER_ID, IMAGE_USER_ID)
    path.chmod(0o400)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("container")
    timings: dict[str, float] = {"base image": ensure_base_image()}
    image = f"localhost/idp:test-{os.getpid()}"
    timings["build"] = build_image(image, tmp / "build.log")

    secrets = tmp / "secrets"
    secrets.mkdir()
    database_url = create_database(f"idp_container_test_{os.getpid()}")
    values = {
        "secret-key": f"container-secret-key-{uuid.uuid4().hex}",
        "encryption-key": f"container-encryption-key-{uuid.uuid4().hex}",
        # Every container of the deployment shares the personal-data keys (issue 28).
        "data-keys": f"1:container-data-key-{uuid.uuid4().hex}",
        "blind-index-keys": f"1:container-index-key-{uuid.uuid4().hex}",
        "database-url": database_url,
        "redis-url": redis_url(12),
        "amqp-url": AMQP_URL,
    }
    for name, value in values.items():
        write_secret(secrets, name, value)
    import redis

    redis.Redis.from_url(values["redis-url"], socket_connect_timeout=1).flushdb()

    port = lasting_port()  # bound by `idp serve` only after the build and the migrations
    fake = serve_in_thread()
    fake.control.register_app(MINI_APPID, MINI_SECRET, kind="miniprogram")
    exchange = f"idp.events.container-{uuid.uuid4().hex[:12]}"
    broker = Broker(AMQP_URL, exchange=exchange, queue=exchange)
    env = {
        "IDP_ISSUER": f"http://127.0.0.1:{port}",
        **{f"IDP_{name.upper().replace('-', '_')}_FILE": f"{SECRETS_IN_CONTAINER}/{name}"
           for name in values},
        "IDP_AMQP_EXCHANGE": exchange,
        "IDP_EVENT_DELIVERY": "external",
        "IDP_WECHAT_API_BASE": fake.base_url,
        "IDP_WECHAT_OPEN_BASE": fake.base_url,
        "IDP_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1",
        "IDP_ARGON2_TIME_COST": "1",
        "IDP_ARGON2_MEMORY_COST": "1024",
        "IDP_ARGON2_PARALLELISM": "1",
        "IDP_WECHAT_SCAN_LONG_POLL_SECONDS": str(LONG_POLL_SECONDS),
        "IDP_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    deployment = Deployment(
        image, f"http://127.0.0.1:{port}", env, secrets,
        # What is secret and could not be in the image by chance (a public default like
        # amqp://guest:guest@… is quoted by the libraries' own docs).
        [values["secret-key"], values["encryption-key"], values["data-keys"],
         values["blind-index-keys"], values["database-url"]], tmp, fake,
        broker, timings=timings,
    )  # fmt: skip
    try:
        for role in ("cli", "web", "worker"):
            deployment.containers[role] = buildah(
                "from", "--quiet", "--pull-never", "--name", f"idp-test-{os.getpid()}-{role}",
                image,
            ).strip()  # fmt: skip
        yield deployment
    finally:
        for process in deployment.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for container in deployment.containers.values():
            subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
        # This run's tag only: the image stays as CACHED_TAG for the next run's build.
        subprocess.run(["buildah", "rmi", image], capture_output=True, check=False)
        broker.close()
        fake.shutdown()
        drop_database(database_url)


@pytest.fixture(scope="module")
def serving(deployment: Deployment) -> Deployment:
    """Migrated by the image's `idp db upgrade`, then `idp serve` and `idp worker` started from
    it; the accounts and clients of the flows are written meanwhile, from this process, by the
    functions the `idp users/clients/wechat-apps create` commands call."""
    started = time.monotonic()
    deployment.cli("db", "upgrade")
    deployment.timings["db upgrade"] = time.monotonic() - started

    started = time.monotonic()
    port = deployment.url.rsplit(":", 1)[1]
    web = deployment.start("web", "serve", "--host", "127.0.0.1", "--port", port,
                           "--workers", "2")  # fmt: skip
    deployment.start("worker", "worker", "--interval", "0.5")
    seed(deployment)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        assert web.poll() is None, (deployment.logs / "web.log").read_text()[-3000:]
        try:
            if requests.get(f"{deployment.url}/readyz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "idp serve from the image not ready in time"
        time.sleep(0.3)
    deployment.timings["serve until ready"] = time.monotonic() - started
    return deployment


def seed(deployment: Deployment) -> None:
    from idp import create_app
    from idp.accounts.seed import create_password_user
    from idp.oidc.clients import create_client
    from idp.wechat.apps import create_wechat_app

    settings = {name: (deployment.secrets / key).read_text().strip() for name, key in (
        ("IDP_DATABASE_URL", "database-url"), ("IDP_SECRET_KEY", "secret-key"),
        ("IDP_ENCRYPTION_KEY", "encryption-key"), ("IDP_AMQP_URL", "amqp-url"),
        ("IDP_DATA_KEYS", "data-keys"), ("IDP_BLIND_INDEX_KEYS", "blind-index-keys"),
    )}  # fmt: skip
    app = create_app({
        **settings, "TESTING": True, "IDP_LOG_JSON": False, "IDP_ISSUER": deployment.url,
        "IDP_INSTANCE_PATH": str(deployment.logs),
        "IDP_AMQP_EXCHANGE": deployment.env["IDP_AMQP_EXCHANGE"], "IDP_EVENT_DELIVERY": "external",
        "IDP_ARGON2_TIME_COST": 1, "IDP_ARGON2_MEMORY_COST": 1024, "IDP_ARGON2_PARALLELISM": 1,
    })  # fmt: skip
    with app.app_context():
        deployment.sub = create_password_user(PHONE, PASSWORD).id
        website, secret = create_client(
            name="Website", first_party=True, redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code"], scope="openid profile phone",
        )  # fmt: skip
        deployment.client_id, deployment.client_secret = website.client_id, secret or ""
        create_wechat_app("miniprogram", MINI_APPID, MINI_SECRET, name="Mini")
        mini, _ = create_client(
            name="Mini", public=True, wechat_appid=MINI_APPID, grant_types=[TOKEN_EXCHANGE],
            scope="openid profile phone offline_access",
        )  # fmt: skip
        deployment.mini_client_id = mini.client_id
        from idp.extensions import db

        db.session.remove()  # no connection of this process stays open
        db.engine.dispose()


def test_readyz_and_healthz_answer_from_the_image(serving: Deployment) -> None:
    ready = requests.get(f"{serving.url}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": "ok"}
    assert requests.get(f"{serving.url}/healthz", timeout=5).status_code == 200
    discovery = requests.get(f"{serving.url}/.well-known/openid-configuration", timeout=5).json()
    assert discovery["issuer"] == serving.url


def test_code_flow_with_pkce_against_the_image__rfc7636_4(serving: Deployment) -> None:
    browser = requests.Session()
    browser_login(browser, serving.url)
    code, verifier = authorization_code(browser, serving.url, serving,
                                        scope="openid profile phone")  # fmt: skip
    tokens = redeem(serving.url, serving, code, verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer" and body["id_token"]
    userinfo = requests.get(f"{serving.url}/oauth/userinfo", timeout=5,
                            headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["sub"] == serving.sub
    assert userinfo.json()["phone_number"] == PHONE
    # The verifier is bound to the code: the same code cannot be redeemed again (RFC 6749 4.1.2).
    assert redeem(serving.url, serving, code, verifier).status_code == 400


def test_mini_program_token_exchange_and_phone_merge_reach_rabbitmq_through_the_worker(
    serving: Deployment,
) -> None:
    """CONTRACT §5 and §6 from the image; the merge's event is published by `idp worker`."""
    issued = serving.fake.control.issue_js_code(MINI_APPID, user="container-user")
    exchanged = requests.post(f"{serving.url}/oauth/token", timeout=10, data={
        "grant_type": TOKEN_EXCHANGE, "client_id": serving.mini_client_id,
        "subject_token": issued.code, "subject_token_type": JS_CODE,
        "scope": "openid profile phone offline_access",
    })  # fmt: skip
    assert exchanged.status_code == 200, exchanged.text
    tokens = exchanged.json()
    assert tokens["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert tokens["id_token"] and tokens["refresh_token"]

    phone_code = serving.fake.control.issue_phone_code(MINI_APPID, PHONE.removeprefix("+86"))
    bound = requests.post(f"{serving.url}/wechat/phone", json={"code": phone_code}, timeout=10,
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert bound.status_code == 200, bound.text
    assert bound.json()["merged"] is True and bound.json()["phone_number"] == PHONE

    def routing_keys() -> list[str]:
        return [message.routing_key for message in serving.broker.drain(timeout=0)]

    deadline = time.monotonic() + 30
    while "account-merged" not in routing_keys():
        assert serving.processes["worker"].poll() is None, (
            (serving.logs / "worker.log").read_text()[-3000:]
        )
        assert time.monotonic() < deadline, f"no account-merged event: {routing_keys()}"
        time.sleep(0.3)
    assert "account-created" in routing_keys()


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(status.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]


def idp_processes(serving: Deployment, role: str) -> list[int]:
    """The Python processes of `role` (buildah itself runs as root, outside the image)."""
    pids = []
    for pid in process_tree(serving.processes[role].pid):
        try:
            executable = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if "python" in Path(executable).name:
            pids.append(pid)
    return pids


def test_the_server_and_the_worker_run_as_the_non_root_user(serving: Deployment) -> None:
    web, worker = idp_processes(serving, "web"), idp_processes(serving, "worker")
    assert len(web) == 3, web  # granian's master and its two workers
    assert len(worker) == 1, worker
    assert {uid_of(pid) for pid in web + worker} == {IMAGE_USER_ID}


def pss_megabytes(pids: list[int]) -> float:
    """Proportional set size: each page shared by the forked workers counted once, as the
    pod's memory cgroup charges it."""
    total = 0
    for pid in pids:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        total += int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1))  # type: ignore[union-attr]
    return total / 1024


def test_measured_memory_fits_the_kubernetes_limits(serving: Deployment) -> None:
    """deploy/kubernetes/base sets the pods' memory from these figures (README)."""
    from tests.container.manifests import memory_limit_mebibytes

    web = pss_megabytes(idp_processes(serving, "web"))
    worker = pss_megabytes(idp_processes(serving, "worker"))
    serving.timings["memory web MB"], serving.timings["memory worker MB"] = web, worker
    assert web < memory_limit_mebibytes("idp-web") * 0.8, web
    assert worker < memory_limit_mebibytes("idp-worker") * 0.8, worker


def test_sigterm_drains_the_request_in_flight_and_exits_0(serving: Deployment) -> None:
    """As the kubelet stops a pod: SIGTERM to the container's main process (granian's master,
    which `idp serve` became). A request in flight is answered; then every process exits 0."""
    web = serving.processes["web"]
    master = idp_processes(serving, "web")[0]

    # The scan-to-sign-in page's long-poll: held open by the server until the ticket changes or
    # IDP_WECHAT_SCAN_LONG_POLL_SECONDS pass.
    browser = requests.Session()
    code = browser.get(f"{serving.url}/login/scan/code.png", timeout=10)
    assert code.status_code == 200, code.text
    answers: list[tuple[int, dict[str, Any], float]] = []

    def long_poll() -> None:
        started = time.monotonic()
        page = browser.get(f"{serving.url}/login/scan/status", params={"seen": "waiting"},
                           timeout=30)  # fmt: skip
        answers.append((page.status_code, page.json(), time.monotonic() - started))

    poll = threading.Thread(target=long_poll)
    poll.start()
    time.sleep(1.5)
    assert not answers, answers  # still held by the server
    os.kill(master, signal.SIGTERM)
    os.kill(idp_processes(serving, "worker")[0], signal.SIGTERM)
    poll.join(timeout=40)
    assert web.wait(timeout=40) == 0, (serving.logs / "web.log").read_text()[-3000:]
    assert serving.processes["worker"].wait(timeout=20) == 0
    # Answered in full after the SIGTERM, not cut off: the drain waited for it.
    assert answers and answers[0][0] == 200, answers
    assert answers[0][1]["status"] == "waiting" and answers[0][2] >= LONG_POLL_SECONDS - 1
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{serving.url}/healthz", timeout=2)


def test_no_secret_in_the_image_config_or_its_layers(
    serving: Deployment, tmp_path: Path
) -> None:
    """Neither the build's TLS CA (a build secret) nor a runtime secret nor a secret of the
    checkout (instance/) is in `buildah inspect` or in any layer of the image."""
    started = time.monotonic()
    needles = {value for value in serving.secret_values if len(value) > 16}
    needles |= private_ca_bodies()
    instance = REPO / "instance"
    for name in ("secret_key", "encryption_key"):
        if (instance / name).is_file():
            needles.add((instance / name).read_text().strip())
    inspected = buildah("inspect", "--type", "image", serving.image)
    for needle in needles:
        assert needle not in inspected
    config = json.loads(inspected)["Docker"]["config"]
    assert not [e for e in config.get("Env", []) if re.match(r"IDP_(SECRET|ENCRYPTION)_KEY=", e)]
    assert config["User"] == f"{IMAGE_USER_ID}:{IMAGE_USER_ID}"
    assert config["Entrypoint"] == ["idp"] and config["Cmd"][0] == "serve"
    assert "http://127.0.0.1:8000/readyz" in config["Healthcheck"]["Test"][-1]

    buildah("push", "--quiet", "--disable-compression", serving.image, f"dir:{tmp_path}",
            timeout=300)  # fmt: skip
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    names: set[str] = set()
    for layer in manifest["layers"]:
        blob = tmp_path / layer["digest"].split(":", 1)[1]
        content = blob.read_bytes()
        for needle in needles:
            assert needle.encode() not in content, f"a secret is in layer {layer['digest']}"
        with tarfile.open(blob) as archive:
            names |= {name.lstrip("./") for name in archive.getnames()}
    assert not [n for n in names if n.startswith("run/secrets/") or n.endswith("/secret_key")]
    assert "opt/idp/bin/idp" in names
    assert not [n for n in names if re.match(r"opt/idp/bin/pip", n)]  # no installer at run time
    serving.timings["layer scan"] = time.monotonic() - started


def private_ca_bodies() -> set[str]:
    """Base64 bodies of certificates the host trusts beyond Debian's bundle: the intercepting
    proxy's CA, handed to the build as the secret `ca` (none on an ordinary machine)."""
    host = os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT") or ""
    if not host or not Path(host).is_file():
        return set()

    def bodies(text: str) -> set[str]:
        found = re.findall(r"-----BEGIN CERTIFICATE-----(.+?)-----END", text, re.S)
        return {"".join(body.split()) for body in found}

    debian = Path("/usr/share/ca-certificates/mozilla")
    public: set[str] = set()
    for certificate in debian.glob("*.crt"):
        public |= bodies(certificate.read_text())
    # Lines of 64 characters, as they would appear in a PEM file copied into a layer.
    return {body[64:128] for body in bodies(Path(host).read_text()) - public if len(body) > 128}


def test_timings_are_reported(serving: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a check: the figures the README quotes, printed with -s."""
    with capsys.disabled():
        print("\ncontainer image timings:", {k: round(v, 1) for k, v in serving.timings.items()})
    assert serving.timings["build"] > 0
