"""Failed client authentications at introspection (RFC 7662 §2.1) and revocation (RFC 7009
§2.1) lock the client out there for a while (`idp.oidc.client_auth_failures`): a credential
check is never unlimited. SQLite and PostgreSQL alike (the `client` fixture's backends)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

LIMIT = 3


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "IDP_CLIENT_AUTH_FAILURE_LIMIT": f"{LIMIT}/minute"}


def _introspect(client: Any, auth: tuple[str, str]) -> Any:
    return client.post("/oauth/introspect", data={"token": "not-a-token"}, auth=auth)


def test_rfc7662_s2_1_failures_lock_the_client_out_even_with_its_right_secret(
    client: Any, make_client: Any
) -> None:
    service, secret = make_client(grant_types=["client_credentials"], scope="openid")
    failed = [_introspect(client, (service.client_id, "wrong")) for _ in range(LIMIT)]
    assert [answer.status_code for answer in failed] == [401] * LIMIT
    locked = _introspect(client, (service.client_id, secret))
    assert locked.status_code == 429
    assert locked.get_json()["error"] == "temporarily_unavailable"
    assert 1 <= int(locked.headers["Retry-After"]) <= 60
    assert "WWW-Authenticate" not in locked.headers
    # A wrong secret is refused alike: guessing stops, it does not just slow down.
    assert _introspect(client, (service.client_id, "wrong")).status_code == 429


def test_rfc7662_s2_1_other_clients_and_successes_are_not_counted(
    client: Any, make_client: Any
) -> None:
    service, secret = make_client(grant_types=["client_credentials"], scope="openid")
    other, other_secret = make_client(grant_types=["client_credentials"], scope="openid")
    answers = [_introspect(client, (service.client_id, secret)) for _ in range(LIMIT * 3)]
    assert [answer.status_code for answer in answers] == [200] * (LIMIT * 3)
    for _ in range(LIMIT):
        _introspect(client, (other.client_id, "wrong"))
    assert _introspect(client, (other.client_id, other_secret)).status_code == 429
    assert _introspect(client, (service.client_id, secret)).get_json() == {"active": False}


def test_rfc7009_s2_1_revocation_counts_failures_of_client_secret_post(
    client: Any, make_client: Any
) -> None:
    service, secret = make_client(grant_types=["client_credentials"], scope="openid",
                                  token_endpoint_auth_method="client_secret_post")
    form = {"token": "not-a-token", "client_id": service.client_id}
    failed = [client.post("/oauth/revoke", data={**form, "client_secret": "wrong"})
              for _ in range(LIMIT)]
    assert [answer.status_code for answer in failed] == [400] * LIMIT
    locked = client.post("/oauth/revoke", data={**form, "client_secret": secret})
    assert locked.status_code == 429
    assert locked.get_json()["error"] == "temporarily_unavailable"
    # The introspection endpoint shares the count: the same secret is being guessed.
    assert _introspect(client, (service.client_id, secret)).status_code == 429


def _assertion(claims: Any) -> str:
    def part(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_rfc7523_s3_an_assertion_counts_against_the_client_it_names(
    client: Any, make_client: Any
) -> None:
    service, secret = make_client(grant_types=["client_credentials"], scope="openid")
    form = {
        "token": "not-a-token",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion({"iss": service.client_id, "sub": service.client_id}),
    }
    for _ in range(LIMIT):
        assert client.post("/oauth/introspect", data=form).status_code in (400, 401)
    assert _introspect(client, (service.client_id, secret)).status_code == 429


@pytest.mark.parametrize("payload", [
    "[" * 5000 + "]" * 5000,  # nested beyond the parser's recursion
    json.dumps({"sub": "x" * 9000}),  # beyond what is read
    "not json",
    json.dumps(["a list"]),
])
def test_rfc7523_s3_hostile_assertions_are_refused_cleanly(
    client: Any, make_client: Any, payload: str
) -> None:
    encoded = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()
    form = {
        "token": "not-a-token",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": f"e30.{encoded}.c2ln",
    }
    for _ in range(LIMIT + 1):
        answer = client.post("/oauth/introspect", data=form)
        assert answer.status_code in (400, 401)
        assert answer.get_json()["error"] == "invalid_client"
