"""A client registers how it authenticates (OIDC Registration §2 `token_endpoint_auth_method`,
CONTRACT §8), and the token, revocation and introspection endpoints accept that method and no
other (RFC 6749 §2.3.1: Basic or the body; OIDC Core §9)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from joserfc.jwk import ECKey, KeySet

from idp.cli import clients as clients_command
from idp.extensions import db
from idp.oidc.clients import ClientSpecError
from idp.oidc.models import Client

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
