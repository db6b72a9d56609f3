"""`private_key_jwt` client authentication (RFC 7523 §3, OIDC Core §9): one use per `jti` on every
store (database on SQLite and PostgreSQL, Redis), a capped lifetime, and `invalid_client` for a
client that has no keys. Each test runs on both databases, with and without Redis."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from idp import create_app
from idp.extensions import db
from tests.conftest import ISSUER, IsolatedClient, base_config
from tests.redis_db import redis_url

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIS_URL = redis_url(2)


def redis_skip_reason() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as error:  # noqa: BLE001
        return f"Redis not reachable at IDP_TEST_REDIS_URL ({type(error).__name__})"
    return None


@pytest.fixture(params=["database", "redis"])
def replay_store(request: pytest.FixtureRequest) -> str:
    if request.param == "redis" and (reason := redis_skip_reason()):
        pytest.skip(reason)
    return str(request.param)


@pytest.fixture
def app_config(tmp_path: Any, database_url: str, replay_store: str) -> dict[str, Any]:
    config = base_config(tmp_path, database_url)
    if replay_store == "redis":
        config["IDP_REDIS_URL"] = REDIS_URL
    return config


@pytest.fixture(autouse=True)
def signing_keys(app: Flask) -> None:
    """Keys exist before the first request, as in production: creating them lazily commits the
    request's session, which would hide an uncommitted `jti`."""
    from idp.oidc.context import secret_box
    from idp.oidc.keys import ensure_keys

    ensure_keys(secret_box())


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


@pytest.fixture
def service(make_client: Any, key: ECKey) -> Any:
    client, _ = make_client(
        name="Service",
        grant_types=["client_credentials", "authorization_code"],
        redirect_uris=["https://rp.example/callback"],
        jwks=KeySet([key]).as_dict(private=False),
        scope="openid",
    )
    return client


def assertion(client_id: str, key: ECKey, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "jti": secrets.token_urlsafe(12),
        "aud": f"{ISSUER}/oauth/token",
        "iat": now,
        "exp": now + 60,
        **overrides,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def client_credentials(browser: FlaskClient, signed: str) -> Any:
    return browser.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        },
    )


def assert_invalid_client(response: Any) -> None:
    """RFC 6749 §5.2: the client did not use HTTP Basic, so no Basic challenge (issue 23 item 8):
    400, and a description that says why."""
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_client"
    assert response.get_json()["error_description"]
    assert "WWW-Authenticate" not in response.headers


def test_an_assertion_is_used_once__rfc7523_3(
    client: FlaskClient, service: Any, key: ECKey
) -> None:
    signed = assertion(service.client_id, key)
    first = client_credentials(client, signed)
    assert first.status_code == 200, first.get_json()
    assert_invalid_client(client_credentials(client, signed))
    assert_invalid_client(client_credentials(client, signed))


def test_a_used_assertion_is_refused_by_another_process__rfc7523_3(
    app: Flask, client: FlaskClient, service: Any, key: ECKey, app_config: dict[str, Any]
) -> None:
    """The `jti` is committed before the answer: a second app on the same stores (another
    worker) refuses it too."""
    signed = assertion(service.client_id, key)
    assert client_credentials(client, signed).status_code == 200
    other = create_app(app_config)
    other.test_client_class = IsolatedClient
    with other.app_context():
        try:
            assert_invalid_client(client_credentials(other.test_client(), signed))
        finally:
            db.session.remove()
            db.engine.dispose()


def test_the_jti_stays_used_when_the_grant_then_fails__rfc7523_3(
    client: FlaskClient, service: Any, key: ECKey
) -> None:
    signed = assertion(service.client_id, key)
    failed = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": "no-such-code",
            "redirect_uri": "https://rp.example/callback",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        },
    )
    assert failed.get_json()["error"] == "invalid_grant"
    assert_invalid_client(client_credentials(client, signed))


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": 10 * 365 * 24 * 3600}, id="exp-ten-years-ahead"),
        pytest.param({"exp": 3600, "iat": None}, id="exp-an-hour-ahead-without-iat"),
        pytest.param({"iat": -600, "exp": 30}, id="exp-minus-iat-over-the-cap"),
        pytest.param({"iat": 600, "exp": 660}, id="iat-in-the-future"),
        pytest.param({"exp": "tomorrow"}, id="exp-not-a-number"),
        pytest.param({"exp": -120}, id="expired"),
    ],
)
def test_assertion_lifetime_is_capped__rfc7523_3(
    client: FlaskClient, service: Any, key: ECKey, claims: dict[str, Any]
) -> None:
    now = int(time.time())
    absolute = {
        name: (now + value if isinstance(value, int) else value) for name, value in claims.items()
    }
    assert_invalid_client(client_credentials(client, assertion(service.client_id, key, **absolute)))


def test_assertion_within_the_cap_is_accepted__rfc7523_3(
    client: FlaskClient, service: Any, key: ECKey
) -> None:
    now = int(time.time())
    near_cap = assertion(service.client_id, key, iat=now, exp=now + 290)
    assert client_credentials(client, near_cap).status_code == 200
    without_iat = assertion(service.client_id, key, iat=None, exp=now + 120)
    assert client_credentials(client, without_iat).status_code == 200


def test_the_cap_is_configurable(app: Flask, client: FlaskClient, service: Any, key: ECKey) -> None:
    now = int(time.time())
    app.config["IDP_CLIENT_ASSERTION_MAX_LIFETIME"] = 30
    assert_invalid_client(
        client_credentials(client, assertion(service.client_id, key, exp=now + 120))
    )
    accepted = client_credentials(client, assertion(service.client_id, key, exp=now + 20))
    assert accepted.status_code == 200


def test_assertion_for_a_client_without_keys_is_invalid_client__rfc7523_3(
    client: FlaskClient, make_client: Any, key: ECKey
) -> None:
    """A secret client (no JWKS) named by a well-formed assertion: 401, not a crash."""
    secret_client, _ = make_client(grant_types=["client_credentials"], scope="openid")
    assert_invalid_client(client_credentials(client, assertion(secret_client.client_id, key)))


def test_assertion_for_a_client_with_an_empty_key_set_is_invalid_client__rfc7523_3(
    client: FlaskClient, make_client: Any, key: ECKey
) -> None:
    """A row from before keys were checked at registration."""
    public_keys = KeySet([key]).as_dict(private=False)
    keyless, _ = make_client(grant_types=["client_credentials"], scope="openid", jwks=public_keys)
    keyless.jwks = {"keys": []}
    db.session.commit()
    assert_invalid_client(client_credentials(client, assertion(keyless.client_id, key)))
