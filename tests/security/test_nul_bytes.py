"""A NUL character (U+0000) anywhere in a request: PostgreSQL's text cannot hold it, so before
the request guard (idp/input_guard.py) each place below was a driver error and a 500 on
PostgreSQL. Each is refused with 400 in the route's usual shape — the RFC 6749 §5.2 JSON error
on protocol endpoints, the error page for people — on both backends, and nothing is written."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import CodeFlow, csrf_token, login
from tests.security.test_hostile_input import table_counts

NUL_ID = "client\x00id"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # About the guard, not the limits (tests/security/conftest.py turns them on).
    return {**app_config, "RATELIMIT_ENABLED": False, "IDP_THROTTLE_ENABLED": False}


@pytest.fixture
def counted(client: FlaskClient, website: Any) -> dict[str, int]:
    client.get("/oauth/jwks")  # signing keys are created on first use: before counting
    return table_counts()


def assert_oauth_400(response: Any) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["error"] == "invalid_request", body
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert response.headers["Cache-Control"] == "no-store"


def assert_page_400(response: Any) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/html"
    assert response.headers["X-Request-Id"] in response.get_data(as_text=True)


def basic(username: str, password: str = "secret") -> dict[str, str]:
    raw = f"{username}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def unsigned_assertion(sub: str) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"iss": sub, "sub": sub, "aud": "http://127.0.0.1:5000/oauth/token", "exp": 2**31}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
@pytest.mark.parametrize(
    "how",
    ["form_client_id", "basic_client_id", "form_parameter", "query_parameter", "parameter_name"],
)
def test_nul_in_client_credentials_and_parameters_is_invalid_request__rfc6749_5_2(
    client: FlaskClient, counted: dict[str, int], path: str, how: str
) -> None:
    data = {"grant_type": "client_credentials", "token": "t", "refresh_token": "r"}
    headers: dict[str, str] = {}
    query = {}
    if how == "form_client_id":
        data["client_id"] = NUL_ID
    elif how == "basic_client_id":
        headers = basic(NUL_ID)
    elif how == "form_parameter":
        data["scope"] = "openid\x00"
    elif how == "query_parameter":
        query = {"client_id": NUL_ID}
    else:
        data["x\x00y"] = "1"
    response = client.post(path, data=data, headers=headers, query_string=query)
    assert_oauth_400(response)
    assert table_counts() == counted


def test_nul_in_a_client_assertion_sub_is_invalid_client__rfc7523_3(
    client: FlaskClient, counted: dict[str, int]
) -> None:
    """The NUL sits inside the JWT, where no request-level check can see it: the client lookup
    itself refuses an id no client can have."""
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": unsigned_assertion(NUL_ID),
        },
    )
    assert response.status_code in (400, 401), response.get_data(as_text=True)[:300]
    assert response.get_json()["error"] == "invalid_client"
    assert table_counts() == counted


def test_nul_in_a_refresh_token_and_code_is_invalid_request__rfc6749_5_2(
    client: FlaskClient, website: Any, counted: dict[str, int]
) -> None:
    for grant in ({"grant_type": "refresh_token", "refresh_token": "r\x00"},
                  {"grant_type": "authorization_code", "code": "c\x00",
                   "redirect_uri": "https://rp.example/callback"}):
        response = client.post("/oauth/token", data=grant, headers=basic(*website_auth(website)))
        assert_oauth_400(response)
    assert table_counts() == counted


def website_auth(website: Any) -> tuple[str, str]:
    return website[0].client_id, website[1]


def test_nul_in_a_bearer_token_is_invalid_request__rfc6750_3_1(
    client: FlaskClient, counted: dict[str, int]
) -> None:
    response = client.get("/oauth/userinfo", headers={"Authorization": "Bearer abc\x00def"})
    assert_oauth_400(response)
    response = client.post("/oauth/userinfo", data={"access_token": "abc\x00def"})
    assert_oauth_400(response)


@pytest.mark.parametrize("parameter", ["client_id", "nonce", "state", "redirect_uri", "scope"])
def test_nul_in_an_authorization_request_shows_the_error_page__oidc_core_3_1_2_6(
    client: FlaskClient, website: Any, user: Any, counted: dict[str, int], parameter: str
) -> None:
    """No redirect: a request that cannot be read has no verified redirect URI to answer to."""
    login(client, "+8613800138000")
    before = table_counts()
    flow = CodeFlow(client, website[0], website[1])
    params = flow.authorize_params()
    params[parameter] = params[parameter] + "\x00"
    for response in (
        client.get("/oauth/authorize", query_string=params),
        client.post("/oauth/authorize", data={**params, "decision": "allow"}),
    ):
        assert_page_400(response)
        assert "Location" not in response.headers
    assert table_counts() == before


def test_nul_in_logout_parameters_shows_the_error_page__rp_initiated_logout_2(
    client: FlaskClient, counted: dict[str, int]
) -> None:
    response = client.get("/oauth/logout", query_string={"client_id": NUL_ID})
    assert_page_400(response)
    response = client.get("/oauth/logout", query_string={"id_token_hint": "a.b\x00.c"})
    assert_page_400(response)


@pytest.mark.parametrize(
    ("page", "fields"),
    [
        ("/login", {"identifier": "+86138\x0000138000", "password": "x"}),
        ("/login", {"identifier": "+8613800138000", "password": "pass\x00word"}),
        ("/login", {"identifier": "+8613800138000", "password": "x", "next": "/\x00"}),
        ("/register", {"phone": "138\x0000138001"}),
        ("/reset", {"phone": "138\x0000138000"}),
        ("/reset/confirm", {"phone": "+8613800138000", "code": "12\x003456",
                            "password": "a new password"}),
        ("/register/confirm", {"phone": "+8613800138001", "code": "123456",
                               "password": "pass\x00word"}),
    ],
)
def test_nul_in_sign_in_forms_shows_the_error_page(
    client: FlaskClient, user: Any, counted: dict[str, int], page: str, fields: dict[str, str]
) -> None:
    before = table_counts()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(page, data={**fields, "csrf_token": token})
    assert_page_400(response)
    assert table_counts() == before


def test_nul_in_account_page_fields_shows_the_error_page(
    client: FlaskClient, user: Any, counted: dict[str, int]
) -> None:
    login(client, "+8613800138000")
    before = table_counts()
    page = client.get("/account")
    token = csrf_token(page.get_data(as_text=True))
    for field in ("name", "nickname", "picture"):
        form = {"name": "Alice", "nickname": "", "picture": "", "csrf_token": token}
        form[field] = "https://x.example/\x00" if field == "picture" else "Al\x00ice"
        assert_page_400(client.post("/account", data=form))
    assert table_counts() == before
    assert client.get("/account").status_code == 200  # still signed in, nothing broken


@pytest.mark.parametrize("path", ["/login\x00", "/oauth/token%00", "/locale/zh%00"])
def test_nul_in_a_path_is_refused(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]


def test_nul_in_a_header_is_refused(
    client: FlaskClient, counted: dict[str, int]
) -> None:
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"},
        headers={"X-Forwarded-For": "1.2.3.4\x00"},
    )
    assert_oauth_400(response)
    assert_page_400(client.get("/login", headers={"X-Request-Id": "0123456789\x00"}))


@pytest.mark.parametrize(
    "body", [{"code": "c\x00"}, {"c\x00de": "x"}, ["\x00"], {"a": [{"b": "\x00"}]}]
)
def test_nul_in_a_json_body_is_invalid_request__rfc6749_5_2(
    client: FlaskClient, counted: dict[str, int], body: Any
) -> None:
    response = client.post("/wechat/phone", json=body, headers={"Authorization": "Bearer x"})
    assert_oauth_400(response)
