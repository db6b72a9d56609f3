"""The mini-program SDK (sdk/miniprogram/) under Node's test runner: its unit tests with a `wx`
stub, and its integration test against a real `idp serve` and the fake WeChat on loopback, set up
through the `idp` command line as an operator would (and, for the second factor, one user who
enrolled an authenticator app and recovery codes, as the account centre would have stored them)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests

from idp import create_app
from idp.extensions import db
from idp.identity.models import Account
from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.second_factor import factors
from idp.second_factor.recovery_codes import new_recovery_codes
from idp.wechat.fake import FakeWeChatServer
from idp.wechat_login.token_exchange import JS_CODE_TOKEN_TYPE

SDK = Path(__file__).resolve().parents[2] / "sdk" / "miniprogram"
IDP = str(Path(sys.executable).with_name("idp"))
NODE = shutil.which("node")
APPID = "wxsdk0000000000001"
APP_SECRET = "sdk-mini-secret-0123456789abcdef"
MFA_USER = "sdk-carol"
STARTUP_SECONDS = 30

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed (the SDK's tests run under Node's test runner)"
)


def node_test(*files: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, "--test", *files], cwd=SDK, env=env, capture_output=True, text=True, timeout=120
    )


def test_sdk_unit_tests_pass_under_node() -> None:
    result = node_test("test/unit.test.mjs")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 17" in result.stdout


@dataclass
class Served:
    issuer: str
    client_id: str
    fake: FakeWeChatServer
    totp_secret: str
    recovery_code: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served_idp(tmp_path: Path, fake_wechat: FakeWeChatServer) -> Iterator[Served]:
    fake = fake_wechat
    fake.control.register_app(APPID, APP_SECRET, kind="miniprogram")
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_ISSUER=issuer,
        IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'idp.sqlite3'}",
        IDP_INSTANCE_PATH=str(tmp_path / "instance"),
        IDP_SECRET_KEY="sdk-test-secret-key",
        IDP_ENCRYPTION_KEY="sdk-test-encryption-key",
        IDP_WECHAT_API_BASE=fake.base_url,
        IDP_WECHAT_OPEN_BASE=fake.base_url,
        IDP_EVENT_DELIVERY="external",
        IDP_LOG_LEVEL="WARNING",
    )

    def idp(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run([IDP, *args], env=env, input=stdin, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    idp("db", "upgrade")
    idp("wechat-apps", "create", "--kind", "miniprogram", "--appid", APPID, "--secret-stdin",
        stdin=APP_SECRET + "\n")
    created: Any = json.loads(idp(
        "clients", "create", "--name", "SDK mini-program", "--public", "--wechat-appid", APPID,
        "--grant-type", "urn:ietf:params:oauth:grant-type:token-exchange",
        "--grant-type", "refresh_token", "--scope", "openid profile phone offline_access",
        "--json"))
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [IDP, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_ready(server, issuer)
        secret, recovery_code = _user_with_a_second_factor(env, issuer, created["client_id"], fake)
        yield Served(issuer, created["client_id"], fake, secret, recovery_code)
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _user_with_a_second_factor(
    env: dict[str, str], issuer: str, client_id: str, fake: FakeWeChatServer
) -> tuple[str, str]:
    """MFA_USER signs in once from the mini-program (the account is made), then enrols an
    authenticator app and gets recovery codes: stored as the account centre stores them."""
    issued = fake.control.issue_js_code(APPID, user=MFA_USER)
    answer = requests.post(f"{issuer}/oauth/token", data={
        "grant_type": TOKEN_EXCHANGE, "client_id": client_id, "subject_token": issued.code,
        "subject_token_type": JS_CODE_TOKEN_TYPE, "scope": "openid",
    }, timeout=10)
    assert answer.status_code == 200, answer.text
    payload = answer.json()["id_token"].split(".")[1]
    sub = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
    settings = {name: value for name, value in env.items() if name.startswith("IDP_")}
    app = create_app({**settings, "TESTING": True})
    with app.app_context():
        account = db.session.get(Account, sub)
        assert account is not None
        secret = pyotp.random_base32()
        factors.add_totp(account, secret, "SDK test")
        codes = new_recovery_codes(account)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return secret, codes[0]


def _wait_until_ready(server: subprocess.Popen[bytes], issuer: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"idp serve exited with {server.returncode}")
        try:
            if requests.get(f"{issuer}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"idp serve at {issuer} not ready in {STARTUP_SECONDS} s")


def test_sdk_against_a_real_idp_serve_and_the_fake_wechat(served_idp: Served) -> None:
    env = {
        **os.environ,
        "IDP_SDK_ISSUER": served_idp.issuer,
        "IDP_SDK_CLIENT_ID": served_idp.client_id,
        "IDP_SDK_APPID": APPID,
        "IDP_SDK_FAKE_WECHAT": served_idp.fake.base_url,
        "IDP_SDK_MFA_USER": MFA_USER,
        "IDP_SDK_TOTP_SECRET": served_idp.totp_secret,
        "IDP_SDK_RECOVERY_CODE": served_idp.recovery_code,
    }
    result = node_test("test/integration.test.mjs", env=env)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# pass 3" in result.stdout and "# skipped 0" in result.stdout
