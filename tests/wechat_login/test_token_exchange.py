"""Mini-program login: RFC 8693 token exchange of a js_code (CONTRACT §5)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from idp.accounts.models import LoginEvent
from idp.extensions import db
from idp.identity.models import Account, Identity, IdentityKind
from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.wechat.fake import FakeWeChatControl
from idp.wechat.models import WeChatSessionKey
from tests.conftest import ISSUER
from tests.oidc.helpers import id_token_claims, jwt_header

from .conftest import MINI_APPID, MINI_SECRET, bearer, exchange, mini_login

JSCODE2SESSION = "/sns/jscode2session"


def count(model: Any) -> int:
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_js_code_gives_id_access_and_refresh_tokens__rfc8693_2_2_1(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    response = exchange(client, mini_client, issued.code)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    tokens = response.get_json()
    assert tokens["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "openid profile phone wechat offline_access"
    assert tokens["refresh_token"]

    account = db.session.scalars(sa.select(Account)).one()
    assert account.created_via == "miniprogram"
    claims = id_token_claims(client, tokens["id_token"])
    assert claims["iss"] == ISSUER
    assert claims["sub"] == account.id
    assert claims["aud"] == [mini_client.client_id]
    assert claims["amr"] == ["wechat"] and claims["auth_time"]
    assert "nonce" not in claims and "at_hash" in claims
    assert claims["wechat_openid"] == issued.openid
    assert claims["wechat_unionid"] == issued.unionid
    assert jwt_header(client, tokens["access_token"])["typ"] == "at+jwt"

    userinfo = client.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert userinfo.status_code == 200 and userinfo.get_json()["sub"] == account.id

    login = db.session.scalars(sa.select(LoginEvent)).one()
    assert (login.account_id, login.channel, login.client_id) == (
        account.id,
        "miniprogram",
        mini_client.client_id,
    )


def test_refresh_token_of_the_exchange_rotates__rfc6749_6(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    first = mini_login(client, control, mini_client, "alice")
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": mini_client.client_id,
            "refresh_token": first["refresh_token"],
        },
    )
    assert response.status_code == 200, response.get_json()
    refreshed = response.get_json()
    assert refreshed["refresh_token"] != first["refresh_token"]
    claims = id_token_claims(client, refreshed["id_token"])
    assert claims["amr"] == ["wechat"]
    assert claims["sub"] == id_token_claims(client, first["id_token"])["sub"]


def test_later_logins_find_the_same_account(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    first = mini_login(client, control, mini_client, "alice")
    second = mini_login(client, control, mini_client, "alice")
    other = mini_login(client, control, mini_client, "bob")
    sub = id_token_claims(client, first["id_token"])["sub"]
    assert id_token_claims(client, second["id_token"])["sub"] == sub
    assert id_token_claims(client, other["id_token"])["sub"] != sub
    assert count(Account) == 2


def test_tokens_follow_the_scope__rfc8693_2_2_1(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    plain = mini_login(client, control, mini_client, "alice", scope="profile")
    assert "id_token" not in plain and "refresh_token" not in plain
    assert plain["scope"] == "profile"
    default = mini_login(client, control, mini_client, "alice", scope=None)
    assert default["scope"] == "openid" and "id_token" in default
    assert "refresh_token" not in default


def test_used_code_is_invalid_grant__rfc6749_5_2(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    assert exchange(client, mini_client, issued.code).status_code == 200
    replay = exchange(client, mini_client, issued.code)
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"


def test_unknown_code_is_invalid_grant(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    response = exchange(client, mini_client, "not-a-code-from-wx-login")
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_grant")
    assert count(Account) == 0


@pytest.mark.parametrize(
    ("errcode", "status", "error"),
    [
        (40029, 400, "invalid_grant"),
        (40163, 400, "invalid_grant"),
        (40226, 400, "access_denied"),
        (45011, 503, "temporarily_unavailable"),
        (-1, 503, "temporarily_unavailable"),
        (40013, 500, "server_error"),
        (40125, 500, "server_error"),
    ],
)
def test_wechat_errcodes_map_to_client_errors_with_nothing_created(
    client: FlaskClient,
    control: FakeWeChatControl,
    mini_client: Any,
    errcode: int,
    status: int,
    error: str,
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    control.arm_failure(JSCODE2SESSION, errcode=errcode)
    response = exchange(client, mini_client, issued.code)
    assert response.status_code == status
    body = response.get_json()
    assert body["error"] == error and body["error_description"]
    if status == 503:
        assert int(response.headers["Retry-After"]) > 0
    assert (count(Account), count(Identity), count(WeChatSessionKey), count(LoginEvent)) == (
        0,
        0,
        0,
        0,
    )


def test_rate_limit_asks_to_retry_after_a_minute(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    control.arm_failure(JSCODE2SESSION, errcode=45011)
    response = exchange(client, mini_client, control.issue_js_code(MINI_APPID, user="a").code)
    assert response.headers["Retry-After"] == "60"


def test_misconfigured_app_is_logged_for_the_operator_without_the_secret(
    client: FlaskClient,
    control: FakeWeChatControl,
    mini_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    control.arm_failure(JSCODE2SESSION, errcode=40125)
    response = exchange(client, mini_client, control.issue_js_code(MINI_APPID, user="a").code)
    assert response.get_json()["error"] == "server_error"
    operator_lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(MINI_APPID in line and "40125" in line for line in operator_lines)
    assert MINI_SECRET not in caplog.text and MINI_SECRET not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "failure",
    [{"status": 502}, {"html": True}, {"truncated": True}, {"delay": 3.0}],
    ids=["http-502", "html-page", "truncated-json", "timeout"],
)
def test_wechat_unavailable_is_503_with_retry_after(
    client: FlaskClient,
    control: FakeWeChatControl,
    mini_client: Any,
    failure: dict[str, Any],
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    control.arm_failure(JSCODE2SESSION, **failure)
    response = exchange(client, mini_client, issued.code)
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert count(Account) == 0


def test_wechat_unreachable_is_503(app: Flask, client: FlaskClient, mini_client: Any) -> None:
    app.config["IDP_WECHAT_API_BASE"] = "http://127.0.0.1:9"  # discard port: refused
    response = exchange(client, mini_client, "any-code")
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert count(Account) == 0


def test_js_code_is_never_retried_after_a_timeout(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    control.arm_failure(JSCODE2SESSION, delay=3.0)
    exchange(client, mini_client, control.issue_js_code(MINI_APPID, user="a").code)
    assert len(control.calls(JSCODE2SESSION)) == 1


# --- request validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}, "invalid_request"),
        ({"subject_token_type": None}, "invalid_request"),
        ({"subject_token": None}, "invalid_request"),
        ({"subject_token": "x" * 300}, "invalid_request"),
        ({"actor_token": "a", "actor_token_type": "b"}, "invalid_request"),
        ({"requested_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "invalid_request"),
        ({"audience": "https://elsewhere.example"}, "invalid_target"),
        ({"scope": "openid admin"}, "invalid_scope"),
    ],
)
def test_malformed_exchange_is_refused_before_calling_wechat__rfc8693_2_2_2(
    client: FlaskClient,
    control: FakeWeChatControl,
    mini_client: Any,
    extra: dict[str, Any],
    error: str,
) -> None:
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "client_id": mini_client.client_id,
        "subject_token": "code",
        "subject_token_type": "urn:wechat:params:oauth:token-type:js_code",
        **extra,
    }
    response = client.post("/oauth/token", data={k: v for k, v in data.items() if v is not None})
    assert response.status_code == 400
    assert response.get_json()["error"] == error
    assert control.calls(JSCODE2SESSION) == []


def test_scope_beyond_the_clients_registration_is_invalid_scope(
    client: FlaskClient, control: FakeWeChatControl, make_client: Any, wechat_apps: None
) -> None:
    narrow, _ = make_client(
        name="Narrow", public=True, wechat_appid=MINI_APPID, grant_types=[TOKEN_EXCHANGE],
        scope="openid",
    )
    response = exchange(client, narrow, "code", scope="openid phone")
    assert response.get_json()["error"] == "invalid_scope"


def test_only_public_clients_with_the_grant_and_an_appid_may_exchange(
    client: FlaskClient, control: FakeWeChatControl, make_client: Any, wechat_apps: None
) -> None:
    website, secret = make_client(name="Site", wechat_appid=MINI_APPID)
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": "code",
            "subject_token_type": "urn:wechat:params:oauth:token-type:js_code",
        },
        auth=(website.client_id, secret),
    )
    assert response.get_json()["error"] == "invalid_client"

    no_grant, _ = make_client(name="Public", public=True, redirect_uris=["myapp:/cb"])
    response = exchange(client, no_grant, "code")
    assert response.get_json()["error"] == "unauthorized_client"
    assert control.calls(JSCODE2SESSION) == []


def test_client_bound_to_a_website_app_is_a_server_error_for_the_operator(
    client: FlaskClient,
    control: FakeWeChatControl,
    make_client: Any,
    wechat_apps: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from .conftest import WEB_APPID

    wrong, _ = make_client(
        name="Wrong", public=True, wechat_appid=WEB_APPID, grant_types=[TOKEN_EXCHANGE]
    )
    response = exchange(client, wrong, "code")
    assert (response.status_code, response.get_json()["error"]) == (500, "server_error")
    assert any(WEB_APPID in record.getMessage() for record in caplog.records)
    assert control.calls(JSCODE2SESSION) == []


def test_discovery_advertises_the_token_exchange_grant__rfc8414_2(client: FlaskClient) -> None:
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert TOKEN_EXCHANGE in metadata["grant_types_supported"]
    assert "none" in metadata["token_endpoint_auth_methods_supported"]


def test_disabled_account_cannot_exchange(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    mini_login(client, control, mini_client, "alice")
    account = db.session.scalars(sa.select(Account)).one()
    account.status = "disabled"
    db.session.commit()
    issued = control.issue_js_code(MINI_APPID, user="alice")
    response = exchange(client, mini_client, issued.code)
    assert response.get_json()["error"] == "access_denied"
    openids = db.session.scalars(
        sa.select(Identity).where(Identity.kind == IdentityKind.WECHAT_OPENID)
    ).all()
    assert len(openids) == 1
