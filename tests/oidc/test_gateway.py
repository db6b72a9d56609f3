"""Checking this IdP's access tokens at an edge gateway (docs/DEPLOYMENT.md, the gateway recipe).

- nginx `auth_request` to the status form of introspection (`/oauth/introspect/bearer`): the
  recipe as written in the docs runs here with Debian's nginx on a loopback port, in front of a tiny
  protected app, against the IdP served over real HTTP;
- local RFC 9068 validation with the JWKS, as the APISIX `openid-connect` plugin does it.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from werkzeug.serving import make_server

from idp import create_app
from idp.extensions import db
from tests.conftest import base_config

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def free_port() -> int:
    server = make_server("127.0.0.1", 0, None)
    port = server.server_port
    server.server_close()
    return port


# --- the status form of introspection, in process ------------------------------------------


@pytest.fixture
def machine(client: Any, make_client: Any) -> dict[str, Any]:
    service, secret = make_client(name="Orders API consumer", grant_types=["client_credentials"],
                                  scope="profile phone")
    return {"client_id": service.client_id, "secret": secret}


def machine_token(client: Any, machine: dict[str, Any], scope: str) -> str:
    response = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                 "scope": scope},
                           auth=(machine["client_id"], machine["secret"]))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def check(client: Any, token: str | None, scope: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/oauth/introspect/bearer", headers=headers,
                      query_string={"scope": scope} if scope else None)


def test_live_token_passes_with_its_subject__rfc7662_2_2(client: Any, flow: Any,
                                                         user: Any) -> None:
    tokens = flow.tokens(scope="openid profile")
    response = check(client, tokens["access_token"])
    assert response.status_code == 200 and response.data == b""
    assert response.headers["X-Auth-Sub"] == user.id
    assert response.headers["X-Auth-Scope"] == "openid profile"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("token", [None, "", "not-a-jwt", "a.b.c", "x" * 9000])
def test_missing_or_malformed_token_is_401__rfc6750_3_1(client: Any, token: str | None) -> None:
    response = check(client, token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_id_token_is_not_an_access_token__rfc9068_4(client: Any, flow: Any) -> None:
    tokens = flow.tokens(scope="openid profile")
    assert check(client, tokens["id_token"]).status_code == 401


def test_revoked_token_and_disabled_account_are_401__rfc7009_2(
        client: Any, flow: Any, user: Any, website: Any) -> None:
    tokens = flow.tokens(scope="openid profile")
    client.post("/oauth/revoke", data={"token": tokens["access_token"]},
                auth=(website[0].client_id, website[1]))
    assert check(client, tokens["access_token"]).status_code == 401
    fresh = flow.tokens(scope="openid profile")
    assert check(client, fresh["access_token"]).status_code == 200
    user.status = "disabled"
    db.session.commit()
    assert check(client, fresh["access_token"]).status_code == 401


def test_required_scope_missing_is_403__rfc6750_3_1(client: Any, machine: dict[str, Any]) -> None:
    token = machine_token(client, machine, "profile")
    assert check(client, token, scope="profile").status_code == 200
    refused = check(client, token, scope="profile phone")
    assert refused.status_code == 403
    assert refused.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="phone"')
    assert check(client, token, scope='phone" x="y').status_code == 400


# --- nginx in front of a tiny app, the IdP over real HTTP ----------------------------------


class ProtectedApp(BaseHTTPRequestHandler):
    """The API behind the gateway: answers with what the gateway told it about the caller."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook
        sub, scope = self.headers.get("X-Auth-Sub", "?"), self.headers.get("X-Auth-Scope", "")
        body = f"hello {sub} scope={scope}"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_args: Any) -> None:
        pass


DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "DEPLOYMENT.md"
NGINX_MAIN = """
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{recipe}
}}
"""


def documented_recipe(port: int, idp_port: int, app_port: int) -> str:
    """The nginx block of docs/DEPLOYMENT.md §12 as written, on loopback ports and without TLS."""
    section = DEPLOYMENT.read_text().split("## 12. Checking access tokens at an API gateway", 1)[1]
    recipe = section.split("```nginx\n", 1)[1].split("```", 1)[0]
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{idp_port};",
        "server 127.0.0.1:9000;": f"server 127.0.0.1:{app_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{port};",
    }
    for written, local in replacements.items():
        assert written in recipe, written
        recipe = recipe.replace(written, local)
    return recipe


@pytest.fixture
def served_idp(tmp_path: Any, database_url: str, backend: str) -> Iterator[dict[str, Any]]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    app = create_app({**base_config(tmp_path, database_url), "IDP_ISSUER": issuer})
    with app.app_context():
        if backend == "postgresql":
            db.drop_all()
        db.create_all()
        from idp.oidc.clients import create_client

        service, secret = create_client(name="Orders API consumer",
                                        grant_types=["client_credentials"], scope="profile phone")
        info = {"issuer": issuer, "port": port, "client_id": service.client_id, "secret": secret}
        db.session.remove()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield info
    finally:
        server.shutdown()
        server.server_close()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def gateway(tmp_path: Path, served_idp: dict[str, Any]) -> Iterator[str]:
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/run does it)")
    api = ThreadingHTTPServer(("127.0.0.1", 0), ProtectedApp)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    recipe = documented_recipe(port, served_idp["port"], api.server_address[1])
    conf.write_text(NGINX_MAIN.format(prefix=prefix, recipe=recipe))
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own config
        [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, process, prefix)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()
        api.shutdown()
        api.server_close()


def _wait_for(url: str, process: subprocess.Popen[bytes], prefix: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
            pytest.fail(f"nginx exited: {process.stderr.read().decode() if process.stderr else ''}"
                        f" {log}")
        try:
            requests.get(url + "/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    pytest.fail("nginx did not start")


def _token(idp: dict[str, Any], scope: str) -> str:
    response = requests.post(f"{idp['issuer']}/oauth/token",
                             data={"grant_type": "client_credentials", "scope": scope},
                             auth=(idp["client_id"], idp["secret"]), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_nginx_auth_request_recipe_guards_an_api__rfc6750_rfc7662(
        gateway: str, served_idp: dict[str, Any]) -> None:
    anonymous = requests.get(f"{gateway}/api/orders", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'

    token = _token(served_idp, "profile")
    bearer = {"Authorization": f"Bearer {token}"}
    allowed = requests.get(f"{gateway}/api/orders", headers=bearer, timeout=10)
    assert allowed.status_code == 200
    assert allowed.text == f"hello {served_idp['client_id']} scope=profile"

    assert requests.get(f"{gateway}/api/phone/x", headers=bearer, timeout=10).status_code == 403
    phone = {"Authorization": f"Bearer {_token(served_idp, 'profile phone')}"}
    assert requests.get(f"{gateway}/api/phone/x", headers=phone, timeout=10).status_code == 200

    revoked = requests.post(f"{served_idp['issuer']}/oauth/revoke", data={"token": token},
                            auth=(served_idp["client_id"], served_idp["secret"]), timeout=10)
    assert revoked.status_code == 200
    assert requests.get(f"{gateway}/api/orders", headers=bearer, timeout=10).status_code == 401
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert requests.get(f"{gateway}/api/orders", headers={"Authorization": f"Bearer {forged}"},
                        timeout=10).status_code == 401


# --- local RFC 9068 validation with the JWKS ------------------------------------------------


def validate_locally(token: str, issuer: str, keys: KeySet) -> dict[str, Any]:
    """What a gateway plugin does with `use_jwks`: signature with the published keys, the
    `at+jwt` type, issuer, expiry (RFC 9068 §4)."""
    decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
    if decoded.header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
        raise JoseError("not an access token")
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": issuer}, exp={"essential": True},
                          client_id={"essential": True}).validate(decoded.claims)
    return decoded.claims


def test_local_validation_with_the_jwks__rfc9068_4(served_idp: dict[str, Any]) -> None:
    issuer = served_idp["issuer"]
    metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    token = _token(served_idp, "profile")

    claims = validate_locally(token, issuer, keys)
    assert claims["client_id"] == served_idp["client_id"] and claims["scope"] == "profile"
    header, payload, signature = token.split(".")
    tampered = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"none"}').rstrip(b"=").decode()
    with pytest.raises(JoseError):
        validate_locally(f"{tampered}.{payload}.", issuer, keys)
    with pytest.raises(JoseError):
        validate_locally(token, "https://other.example", keys)
