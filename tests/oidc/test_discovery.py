"""OIDC Discovery 1.0 and RFC 8414 metadata, and the JWKS."""

from typing import Any

from tests.conftest import ISSUER


def test_discovery_document__oidc_discovery_3(client: Any) -> None:
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["issuer"] == ISSUER
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ):
        assert metadata[name].startswith(ISSUER + "/oauth/")
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert {"RS256", "ES256"} <= set(metadata["id_token_signing_alg_values_supported"])
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]


def test_rfc8414_path_serves_the_same_document__rfc8414_3(client: Any) -> None:
    oidc = client.get("/.well-known/openid-configuration").get_json()
    assert client.get("/.well-known/oauth-authorization-server").get_json() == oidc


def test_every_advertised_endpoint_answers(client: Any) -> None:
    metadata = client.get("/.well-known/openid-configuration").get_json()
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        response = client.post(metadata[name][len(ISSUER) :])
        assert response.status_code in (400, 401), name
        assert "error" in response.get_json()
    assert client.get(metadata["userinfo_endpoint"][len(ISSUER) :]).status_code == 401
    assert client.get(metadata["jwks_uri"][len(ISSUER) :]).status_code == 200
    assert client.get(metadata["end_session_endpoint"][len(ISSUER) :]).status_code == 200
    assert client.get(metadata["authorization_endpoint"][len(ISSUER) :]).status_code == 400


def test_jwks_publishes_public_keys_only(client: Any) -> None:
    keys = client.get("/oauth/jwks").get_json()["keys"]
    assert {key["alg"] for key in keys} == {"RS256", "ES256"}
    for key in keys:
        assert key["kid"] and key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
