"""README.md's Node snippet, run as written: panva's openid-client v6 (from npm, pinned by
tests/oidc/node/package-lock.json) + Express against the IdP over real HTTP on loopback —
discovery, code + PKCE + nonce + state + `iss` (RFC 9207), the code exchange with the registered
`client_secret_post` (RFC 6749 §2.3.1), ID token validation, userinfo, refresh, logout URL.

Only the placeholders change (issuer, CLIENT_ID, CLIENT_SECRET, and the algorithm line the README
says an ES256 client changes); a few lines are appended to listen and to show the session."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from idp import create_app
from idp.extensions import db
from tests.conftest import PASSWORD, base_config
from tests.npm_install import NpmUnavailable, npm_ci

ROOT = Path(__file__).resolve().parents[2]
NODE_PROJECT = Path(__file__).resolve().parent / "node"
README_ISSUER = "http://127.0.0.1:5000"
CALLBACK = "https://shop.example/callback"
SECTION = "### JavaScript (Node, `openid-client` v6 + Express)"
APPENDED = """
// --- appended by tests/oidc/test_readme_node.py ---
app.get('/', (req, res) => res.json({ user: req.session.user ?? null,
  tokens: req.session.tokens ?? null }));
app.get('/refresh', async (req, res, next) => {
  try {
    const fresh = await client.refreshTokenGrant(config, req.session.tokens.refresh_token);
    res.json({ refresh_token: fresh.refresh_token, sub: fresh.claims()?.sub });
  } catch (error) { next(error); }
});
app.use((error, req, res, next) => res.status(500).json({ error: String(error),
  code: error.code ?? null, cause: error.cause ?? null }));
const listener = app.listen(0, '127.0.0.1',
  () => console.log(`LISTENING ${listener.address().port}`));
"""


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    match = re.search(r"```js\n(.*?)```", section, re.S)
    assert match, "README has no Node snippet"
    return match.group(1)


def node_modules() -> Path:
    """`npm ci` once per lock-file version; skipped with the reason when node or npm is absent
    or the registry cannot be reached."""
    try:
        return npm_ci(NODE_PROJECT)
    except NpmUnavailable as error:
        pytest.skip(f"README.md's Node snippet cannot run: {error}")


@pytest.fixture
def idp(tmp_path: Path, database_url: str, backend: str, request: Any) -> Iterator[dict[str, Any]]:
    algorithm = getattr(request, "param", "RS256")
    server = make_server("127.0.0.1", 0, None, threaded=True)
    port = server.server_port
    server.server_close()
    issuer = f"http://127.0.0.1:{port}"
    app = create_app({**base_config(tmp_path, database_url), "IDP_ISSUER": issuer})
    with app.app_context():
        if backend == "postgresql":
            db.drop_all()
        db.create_all()
        from idp.accounts.seed import create_password_user
        from idp.oidc.clients import create_client

        account = create_password_user("+8613800138000", PASSWORD, name="Alice")
        client, secret = create_client(
            name="Shop",
            redirect_uris=[CALLBACK],
            post_logout_redirect_uris=["https://shop.example/"],
            scope="openid profile phone email offline_access",
            token_endpoint_auth_method="client_secret_post",
            id_token_alg=algorithm,
        )
        info = {"issuer": issuer, "client_id": client.client_id, "secret": secret,
                "sub": account.id, "alg": algorithm}
        db.session.remove()
    http_server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    try:
        yield info
    finally:
        http_server.shutdown()
        with app.app_context():
            db.engine.dispose()


@dataclass
class RelyingParty:
    url: str
    process: subprocess.Popen[str]

    def crash_report(self) -> str:
        """What node printed before it died (an unhandled rejection in a route ends it)."""
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "(node still running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()[-3000:]


@pytest.fixture
def relying_party(idp: dict[str, Any], tmp_path: Path) -> Iterator[RelyingParty]:
    modules = node_modules()
    snippet = readme_snippet()
    for placeholder in (README_ISSUER, "'CLIENT_ID'", "'CLIENT_SECRET'"):
        assert placeholder in snippet, placeholder
    snippet = (
        snippet.replace(README_ISSUER, idp["issuer"])
        .replace("'CLIENT_ID'", json.dumps(idp["client_id"]).replace('"', "'"))
        .replace("'CLIENT_SECRET'", json.dumps(idp["secret"]).replace('"', "'"))
    )
    if idp["alg"] != "RS256":
        # What the README tells the RP of an ES256 client to change.
        assert "id_token_signed_response_alg: 'RS256'" in snippet
        snippet = snippet.replace(
            "id_token_signed_response_alg: 'RS256'", f"id_token_signed_response_alg: '{idp['alg']}'"
        )
    workdir = tmp_path / "rp"
    workdir.mkdir()
    (workdir / "node_modules").symlink_to(modules)
    (workdir / "package.json").write_text('{"type": "module"}')
    script = workdir / "app.mjs"
    script.write_text(snippet + APPENDED)
    process = subprocess.Popen(
        [str(shutil.which("node")), str(script)], cwd=workdir, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "NODE_ENV": "test"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # discovery runs first: a failure ends the process
        if not line.startswith("LISTENING"):
            process.wait(timeout=10)
            raise AssertionError(f"the snippet did not start: {line}{process.stderr.read()}")
        yield RelyingParty(f"http://127.0.0.1:{line.split()[1]}", process)
    finally:
        process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def sign_in_and_allow(browser: requests.Session, url: str) -> str:
    """A person at the IdP: sign in, allow; returns the callback URL the IdP redirects to."""
    response = browser.get(url, allow_redirects=False, timeout=10)
    for _ in range(10):
        location = response.headers.get("Location")
        if location and location.startswith(CALLBACK):
            return location
        if location:
            response = browser.get(urljoin(response.url, location), allow_redirects=False,
                                   timeout=10)
            continue
        page = response.text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token, page[:400]
        form = {"csrf_token": token.group(1)}
        if 'name="password"' in page:
            next_value = re.search(r'name="next"[^>]*value="([^"]*)"', page)
            form.update(identifier="+8613800138000", password=PASSWORD,
                        next=(next_value.group(1).replace("&amp;", "&") if next_value else ""))
            response = browser.post(urljoin(response.url, "/login"), data=form,
                                    allow_redirects=False, timeout=10)
        else:
            for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page):
                form.setdefault(name, value.replace("&amp;", "&"))
            form["decision"] = "allow"
            response = browser.post(urljoin(response.url, "/oauth/authorize"), data=form,
                                    allow_redirects=False, timeout=10)
    raise AssertionError("the flow did not reach the callback")


def run_the_snippet(idp: dict[str, Any], relying_party: RelyingParty) -> None:
    try:
        walk_through(idp, relying_party.url)
    except requests.ConnectionError as error:
        raise AssertionError(f"the RP died: {relying_party.crash_report()}") from error


def walk_through(idp: dict[str, Any], relying_party: str) -> None:
    rp = requests.Session()  # the user's browser at the RP (its session cookie)
    start = rp.get(f"{relying_party}/login", allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    authorize = start.headers["Location"]
    assert authorize.startswith(idp["issuer"] + "/oauth/authorize")
    assert parse_qs(urlsplit(authorize).query)["code_challenge_method"] == ["S256"]

    callback = sign_in_and_allow(requests.Session(), authorize)
    landed = rp.get(f"{relying_party}/callback?{urlsplit(callback).query}",
                    allow_redirects=False, timeout=20)
    assert landed.status_code == 302, landed.text  # the code exchange and ID token check held
    assert landed.headers["Location"] == "/"

    state = rp.get(f"{relying_party}/", timeout=10).json()
    assert state["user"]["sub"] == idp["sub"]
    assert state["user"]["phone_number"] == "+8613800138000"
    assert state["tokens"]["refresh_token"]

    refreshed = rp.get(f"{relying_party}/refresh", timeout=20)
    assert refreshed.status_code == 200, refreshed.text
    fresh = refreshed.json()
    assert fresh["sub"] == idp["sub"]
    assert fresh["refresh_token"] != state["tokens"]["refresh_token"]

    logout = rp.get(f"{relying_party}/logout", allow_redirects=False, timeout=10)
    assert logout.status_code == 302
    assert logout.headers["Location"].startswith(idp["issuer"] + "/oauth/logout?")
    assert "id_token_hint=" in logout.headers["Location"]


def test_readme_node_snippet_runs_as_written__rfc6749_2_3_1(
    idp: dict[str, Any], relying_party: RelyingParty
) -> None:
    run_the_snippet(idp, relying_party)


@pytest.mark.parametrize("idp", ["ES256"], indirect=True)
def test_readme_node_snippet_with_an_es256_client__oidc_registration_2(
    idp: dict[str, Any], relying_party: RelyingParty
) -> None:
    run_the_snippet(idp, relying_party)
