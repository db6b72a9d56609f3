"""A client registers how it authenticates (OIDC Registration §2 `token_endpoint_auth_method`,
CONTRACT §8), and the token, revocation and introspection endpoints accept that method and no
other (RFC 6749 §2.3.1: Basic or the body; OIDC Core §9)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from idp.cli import clients as clients_command
from idp.extensions import db
from idp.oidc.clients import ClientSpecError
from idp.oidc.models import Client
from tests.conftest import ISSUER
from tests.oidc.test_client_assertion import ASSERTION_TYPE

SERVICE = {"grant_types": ["client_credentials"], "scope": "openid"}


def basic(client: Client, secret: str) -> dict[str, Any]:
    return {"auth": (client.client_id, secret)}


def post(client: Client, secret: str) -> dict[str, Any]:
    return {"data": {"client_id": client.client_id, "client_secret": secret}}


def call(browser: FlaskClient, path: str, credentials: dict[str, Any], **form: str) -> Any:
    return browser.post(
        path, data={**credentials.get("data", {}), **form}, auth=credentials.get("auth")
    )


def token(browser: FlaskClient, credentials: dict[str, Any]) -> Any:
    return call(browser, "/oauth/token", credentials, grant_type="client_credentials")


@pytest.mark.parametrize(
    ("registered", "accepted", "refused"),
    [
        pytest.param("client_secret_basic", basic, post, id="basic"),
        pytest.param("client_secret_post", post, basic, id="post"),
    ],
)
def test_token_endpoint_accepts_the_registered_method_only__rfc6749_2_3_1(
    client: FlaskClient, make_client: Any, registered: str, accepted: Any, refused: Any
) -> None:
    service, secret = make_client(token_endpoint_auth_method=registered, **SERVICE)
    assert service.token_endpoint_auth_method == registered
    ok = token(client, accepted(service, secret))
    assert ok.status_code == 200, ok.get_json()
    wrong = token(client, refused(service, secret))
    assert wrong.status_code in (400, 401) and wrong.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("registered", "accepted", "refused"),
    [
        pytest.param("client_secret_basic", basic, post, id="basic"),
        pytest.param("client_secret_post", post, basic, id="post"),
    ],
)
def test_introspection_and_revocation_accept_the_registered_method_only__rfc7662_2_1__rfc7009_2_1(
    client: FlaskClient, make_client: Any, registered: str, accepted: Any, refused: Any
) -> None:
    service, secret = make_client(token_endpoint_auth_method=registered, **SERVICE)
    access = token(client, accepted(service, secret)).get_json()["access_token"]
    refused_introspection = call(
        client, "/oauth/introspect", refused(service, secret), token=access
    )
    assert refused_introspection.get_json()["error"] == "invalid_client"
    introspected = call(client, "/oauth/introspect", accepted(service, secret), token=access)
    assert introspected.get_json()["active"] is True
    refused_revocation = call(client, "/oauth/revoke", refused(service, secret), token=access)
    assert refused_revocation.get_json()["error"] == "invalid_client"
    assert call(client, "/oauth/revoke", accepted(service, secret), token=access).status_code == 200
    after = call(client, "/oauth/introspect", accepted(service, secret), token=access)
    assert after.get_json() == {"active": False}


def test_a_private_key_jwt_client_has_no_secret_and_needs_keys(make_client: Any) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    service, secret = make_client(
        token_endpoint_auth_method="private_key_jwt",
        jwks=KeySet([key]).as_dict(private=False),
        **SERVICE,
    )
    assert secret is None and service.client_secret_digest is None
    with pytest.raises(ClientSpecError, match="JWKS"):
        make_client(token_endpoint_auth_method="private_key_jwt", **SERVICE)
    with pytest.raises(ClientSpecError, match="private key"):
        make_client(
            token_endpoint_auth_method="private_key_jwt",
            jwks=KeySet([key]).as_dict(private=True),
            **SERVICE,
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"public": True, "token_endpoint_auth_method": "client_secret_post"},
                     "public client", id="public-with-a-secret-method"),
        pytest.param({"token_endpoint_auth_method": "client_secret_jwt"},
                     "unknown token endpoint auth method", id="unsupported-method"),
        pytest.param({"token_endpoint_auth_method": "client_secret_basic",
                      "jwks": {"keys": []}}, "JWKS is for private_key_jwt", id="jwks-with-secret"),
    ],
)
def test_combinations_that_cannot_work_are_refused(
    make_client: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientSpecError, match=message):
        make_client(redirect_uris=["https://rp.example/callback"], **options)


def test_none_is_a_public_client(make_client: Any) -> None:
    public, secret = make_client(
        token_endpoint_auth_method="none", redirect_uris=["https://rp.example/callback"]
    )
    assert secret is None and public.is_public


def test_cli_registers_the_method__contract_8(app: Any) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        clients_command,
        ["create", "--name", "Node site", "--redirect-uri", "https://shop.example/callback",
         "--token-endpoint-auth-method", "client_secret_post", "--json"],
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    row = db.session.get(Client, created["client_id"])
    assert row.token_endpoint_auth_method == "client_secret_post"
    assert row.check_client_secret(created["client_secret"])

    key = ECKey.generate_key("P-256", auto_kid=True)
    with_keys = runner.invoke(
        clients_command,
        ["create", "--name", "Service", "--grant-type", "client_credentials",
         "--token-endpoint-auth-method", "private_key_jwt", "--jwks-stdin", "--json"],
        input=json.dumps(KeySet([key]).as_dict(private=False)),
    )
    assert with_keys.exit_code == 0, with_keys.output
    assert json.loads(with_keys.output)["client_secret"] is None

    refused = runner.invoke(
        clients_command,
        ["create", "--name", "X", "--public", "--redirect-uri", "https://x.example/cb",
         "--token-endpoint-auth-method", "client_secret_basic"],
    )
    assert refused.exit_code != 0
    assert refused.output.strip().startswith("error:") and len(refused.output.splitlines()) == 1


ENDPOINTS = ("/oauth/token", "/oauth/introspect", "/oauth/revoke")


def _wrong_assertion(client_id: str) -> dict[str, Any]:
    """A well-formed assertion signed by a key the client never registered."""
    now = int(time.time())
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    claims = {"iss": client_id, "sub": client_id, "aud": f"{ISSUER}/oauth/token",
              "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 60}
    signed = jwt.encode({"alg": "ES256", "kid": stranger.kid}, claims, stranger)
    return {"data": {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}}


def _refused(browser: FlaskClient, path: str, credentials: dict[str, Any]) -> Any:
    form = {"grant_type": "client_credentials"} if path == "/oauth/token" else {"token": "x"}
    response = call(browser, path, credentials, **form)
    assert response.get_json()["error"] == "invalid_client", (path, response.get_json())
    assert response.get_json()["error_description"], (path, response.get_json())
    return response


def test_no_basic_challenge_to_a_client_that_did_not_use_basic__rfc6749_5_2(
    client: FlaskClient, make_client: Any
) -> None:
    """client_secret_post, private_key_jwt and none failing: 400, no WWW-Authenticate (a 401 must
    carry a challenge, RFC 9110 §15.5.2, and Basic is not their scheme). openid-client v6 reads
    these as OAuth errors instead of throwing WWWAuthenticateChallengeError."""
    posting, _ = make_client(token_endpoint_auth_method="client_secret_post", **SERVICE)
    key = ECKey.generate_key("P-256", auto_kid=True)
    signing, _ = make_client(token_endpoint_auth_method="private_key_jwt",
                             jwks=KeySet([key]).as_dict(private=False), **SERVICE)
    attempts = {
        "client_secret_post": post(posting, "wrong"),
        "private_key_jwt": _wrong_assertion(signing.client_id),
        "none": {"data": {"client_id": "no-such-client"}},
        "another scheme": {"data": {}, "headers": {"Authorization": "Bearer abc"}},
    }
    for path in ENDPOINTS:
        for method, credentials in attempts.items():
            if "headers" in credentials:
                response = client.post(path, data={"token": "x", "grant_type":
                                                   "client_credentials"},
                                       headers=credentials["headers"])
                assert response.get_json()["error"] == "invalid_client", method
            else:
                response = _refused(client, path, credentials)
            assert response.status_code == 400, (path, method, response.status_code)
            assert "WWW-Authenticate" not in response.headers, (path, method)


def test_basic_failure_is_challenged_in_basic_with_a_description__rfc6749_5_2_rfc7617_2(
    client: FlaskClient, make_client: Any
) -> None:
    basic_client, _ = make_client(token_endpoint_auth_method="client_secret_basic", **SERVICE)
    for path in ENDPOINTS:
        for credentials in (basic(basic_client, "wrong"), {}):  # a wrong secret; nothing at all
            response = _refused(client, path, credentials)
            assert response.status_code == 401, (path, credentials)
            challenge = response.headers["WWW-Authenticate"]
            assert challenge.startswith(f'Basic realm="{ISSUER}", error="invalid_client", ')
            assert 'error_description=""' not in challenge


def test_basic_credentials_are_form_encoded_then_checked_without_authlib__rfc6749_2_3_1(
    client: FlaskClient, make_client: Any, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path's `client_secret_basic` (`idp/oidc/hot_paths/basic_client.py`) takes
    Authlib's steps on a success — id and secret each form-encoded inside Basic (RFC 6749
    §2.3.1, Appendix B) — without Authlib's request; every failure (a wrong secret, a client
    registered for another method, no secret) is Authlib's answer, challenge included."""
    import base64
    from urllib.parse import quote

    from idp.oidc.server import IdentityProviderServer

    service, secret = make_client(token_endpoint_auth_method="client_secret_basic", **SERVICE)
    poster, post_secret = make_client(token_endpoint_auth_method="client_secret_post", **SERVICE)
    authlib_calls: list[str] = []
    original = IdentityProviderServer.authenticate_client

    def counted(self: Any, request: Any, methods: Any, endpoint: str = "token") -> Any:
        authlib_calls.append(endpoint)
        return original(self, request, methods, endpoint)

    monkeypatch.setattr(IdentityProviderServer, "authenticate_client", counted)

    def with_basic(user: str, password: str) -> Any:
        value = base64.b64encode(f"{quote(user, safe='')}:{quote(password, safe='')}".encode())
        return client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": "Basic " + value.decode()})

    ok = with_basic(service.client_id, secret)
    assert ok.status_code == 200, ok.get_json()
    assert authlib_calls == []  # the hot path authenticated it
    wrong = with_basic(service.client_id, secret + "x")
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_client"
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    other_method = with_basic(poster.client_id, post_secret)
    assert other_method.get_json()["error"] == "invalid_client"
    no_secret = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                            headers={"Authorization": "Basic "
                                     + base64.b64encode(service.client_id.encode()).decode()})
    assert no_secret.get_json()["error"] == "invalid_client"
    assert authlib_calls == ["token"] * 3  # each failure was Authlib's to answer
