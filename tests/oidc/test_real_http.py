"""The whole website flow over real HTTP, driven by a third-party relying-party library
(Authlib's requests client): discovery, code + PKCE, ID token checked against the JWKS,
userinfo, refresh, revocation, introspection, RP-initiated logout."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import make_server

from idp import create_app
from idp.extensions import db
from tests.conftest import PASSWORD, base_config

REDIRECT_URI = "http://127.0.0.1:8765/callback"


@pytest.fixture
def served(tmp_path: Any, database_url: str, backend: str) -> Iterator[dict[str, Any]]:
    server = make_server("127.0.0.1", 0, None, threaded=True)  # reserve a port first
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
            name="RP",
            redirect_uris=[REDIRECT_URI],
            post_logout_redirect_uris=[REDIRECT_URI],
            scope="openid profile phone offline_access",
        )
        info = {
            "issuer": issuer,
            "client_id": client.client_id,
            "secret": secret,
            "sub": account.id,
        }
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


def browser_login(browser: requests.Session, url: str) -> str:
    """Follow the authorization request like a person: sign in, allow, land on the callback."""
    response = browser.get(url, allow_redirects=False)
    for _ in range(10):
        location = response.headers.get("Location")
        if location and location.startswith(REDIRECT_URI):
            return location
        if location:
            response = browser.get(urljoin(response.url, location), allow_redirects=False)
            continue
        page = response.text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token, page[:400]
        form = {"csrf_token": token.group(1)}
        if 'name="password"' in page:
            next_value = re.search(r'name="next"[^>]*value="([^"]*)"', page)
            form.update(
                identifier="138 0013 8000",
                password=PASSWORD,
                next=(next_value.group(1).replace("&amp;", "&") if next_value else ""),
            )
            response = browser.post(
                urljoin(response.url, "/login"), data=form, allow_redirects=False
            )
        else:
            for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page):
                form.setdefault(name, value.replace("&amp;", "&"))
            form["decision"] = "allow"
            response = browser.post(
                urljoin(response.url, "/oauth/authorize"), data=form, allow_redirects=False
            )
    raise AssertionError("the flow did not reach the callback")


def test_relying_party_with_authlib_client_over_http(served: dict[str, Any]) -> None:
    metadata = requests.get(
        served["issuer"] + "/.well-known/openid-configuration", timeout=5
    ).json()
    assert metadata["issuer"] == served["issuer"]
    rp = OAuth2Session(
        served["client_id"],
        served["secret"],
        scope="openid profile phone offline_access",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = "v" * 64
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"], nonce="nonce-1", code_verifier=verifier
    )
    assert "code_challenge=" + create_s256_code_challenge(verifier) in url

    callback = browser_login(requests.Session(), url)
    assert parse_qs(urlsplit(callback).query)["iss"] == [served["issuer"]]
    token = rp.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=verifier,
    )

    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": served["issuer"]},
        aud={"essential": True, "value": served["client_id"]},
        nonce={"essential": True, "value": "nonce-1"},
        exp={"essential": True},
    ).validate(id_token.claims)
    assert id_token.claims["sub"] == served["sub"]

    userinfo = rp.get(metadata["userinfo_endpoint"]).json()
    assert userinfo["sub"] == served["sub"] and userinfo["phone_number"] == "+8613800138000"

    refreshed = rp.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]

    introspected = rp.introspect_token(
        metadata["introspection_endpoint"], token=refreshed["access_token"]
    ).json()
    assert introspected["active"] is True and introspected["sub"] == served["sub"]
    rp.revoke_token(metadata["revocation_endpoint"], token=refreshed["access_token"])
    assert rp.introspect_token(
        metadata["introspection_endpoint"], token=refreshed["access_token"]
    ).json() == {"active": False}
    assert (
        requests.get(
            metadata["userinfo_endpoint"],
            timeout=5,
            headers={"Authorization": f"Bearer {refreshed['access_token']}"},
        ).status_code
        == 401
    )

    logout = requests.get(
        metadata["end_session_endpoint"],
        allow_redirects=False,
        timeout=5,
        params={
            "id_token_hint": refreshed["id_token"],
            "post_logout_redirect_uri": REDIRECT_URI,
            "state": "bye",
        },
    )
    assert logout.status_code == 302
    assert logout.headers["Location"] == REDIRECT_URI + "?state=bye"
