"""Phone binding from the mini-program (CONTRACT §6): getuserphonenumber with the cached app
access token, the legacy encryptedData form, merging with the account that holds the phone."""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind
from idp.wechat.crypto import encrypt_for_test
from idp.wechat.fake import FakeWeChatControl
from idp.wechat.models import WeChatAccessToken
from tests.conftest import login
from tests.oidc.helpers import id_token_claims

from .conftest import (
    MINI_APPID,
    OTHER_MINI_APPID,
    bearer,
    bind_phone,
    mini_login,
)

PHONE_API = "/wxa/business/getuserphonenumber"
STABLE_TOKEN = "/cgi-bin/stable_token"
IV = base64.b64encode(b"0123456789abcdef").decode()


def sub_of(browser: FlaskClient, tokens: dict[str, Any]) -> str:
    return str(id_token_claims(browser, tokens["id_token"])["sub"])


def test_code_binds_a_verified_phone_and_returns_fresh_tokens(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    response = bind_phone(client, tokens["access_token"], {"code": code})
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["sub"] == sub_of(client, tokens)
    assert body["phone_number"] == "+8613800138000"
    assert body["merged"] is False
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == tokens["scope"] and body["refresh_token"] and body["id_token"]
    claims = id_token_claims(client, body["id_token"])
    assert claims["phone_number"] == "+8613800138000" and claims["phone_number_verified"]
    userinfo = client.get("/oauth/userinfo", headers=bearer(body["access_token"])).get_json()
    assert userinfo["phone_number"] == "+8613800138000"

    phone = db.session.scalars(
        sa.select(Identity).where(Identity.kind == IdentityKind.PHONE)
    ).one()
    assert (phone.verified, phone.verified_by) == (True, "wechat_phone")

    # The refresh token of the fresh response was stored: it works, once.
    refreshed = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": mini_client.client_id,
            "refresh_token": body["refresh_token"],
        },
    )
    assert refreshed.status_code == 200, refreshed.get_json()


def test_country_code_as_number_and_foreign_numbers_become_e164(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    code = control.issue_phone_code(
        MINI_APPID, "2025550123", country_code="1", country_code_as_number=True
    )
    body = bind_phone(client, tokens["access_token"], {"code": code}).get_json()
    assert body["phone_number"] == "+12025550123"


def test_phone_held_by_a_website_account_merges_into_the_older_account(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, make_user: Any
) -> None:
    website_account = make_user(phone="+8613800138000", name="Alice")
    tokens = mini_login(client, control, mini_client, "alice")
    mini_sub = sub_of(client, tokens)
    assert mini_sub != website_account.id

    code = control.issue_phone_code(MINI_APPID, "13800138000")
    response = bind_phone(client, tokens["access_token"], {"code": code})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["sub"], body["merged"]) == (website_account.id, True)

    # The caller's old tokens died with its account; the fresh ones are the survivor's.
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    userinfo = client.get("/oauth/userinfo", headers=bearer(body["access_token"])).get_json()
    assert userinfo["sub"] == website_account.id
    assert userinfo["name"] == "Alice"
    assert userinfo["wechat_openid"]
    assert id_token_claims(client, body["id_token"])["sub"] == website_account.id
    loser = db.session.get(Account, mini_sub)
    assert loser is not None and loser.status == AccountStatus.MERGED

    # The next mini-program login lands on the survivor, and so does the password.
    again = mini_login(client, control, mini_client, "alice")
    assert sub_of(client, again) == website_account.id
    assert login(client, "+8613800138000").status_code == 302


def test_rebinding_the_same_phone_changes_nothing(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    for _ in range(2):
        code = control.issue_phone_code(MINI_APPID, "13800138000")
        body = bind_phone(client, tokens["access_token"], {"code": code}).get_json()
        assert body["merged"] is False
    assert db.session.scalar(
        sa.select(sa.func.count()).select_from(Identity).where(Identity.kind == "phone")
    ) == 1


# --- the app access token ----------------------------------------------------------------------


def test_access_token_is_cached_encrypted_and_shared(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    alice = mini_login(client, control, mini_client, "alice")
    bob = mini_login(client, control, mini_client, "bob")
    for tokens, number in ((alice, "13800138001"), (bob, "13800138002")):
        code = control.issue_phone_code(MINI_APPID, number)
        assert bind_phone(client, tokens["access_token"], {"code": code}).status_code == 200
    assert len(control.calls(STABLE_TOKEN)) == 1
    assert len(control.calls(PHONE_API)) == 2

    used = control.calls(PHONE_API)[0]["query"]["access_token"]
    row = db.session.get(WeChatAccessToken, MINI_APPID)
    assert row is not None and row.expires_at > time.time()
    assert used not in row.token_encrypted


def test_rejected_access_token_is_refreshed_once_and_the_call_retried_once(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    alice = mini_login(client, control, mini_client, "alice")
    first = control.issue_phone_code(MINI_APPID, "13800138001")
    assert bind_phone(client, alice["access_token"], {"code": first}).status_code == 200
    control.clear_calls()

    control.arm_failure(PHONE_API, errcode=40001)
    code = control.issue_phone_code(MINI_APPID, "13800138001")
    response = bind_phone(client, alice["access_token"], {"code": code})
    assert response.status_code == 200, response.get_json()
    refreshes = control.calls(STABLE_TOKEN)
    assert len(refreshes) == 1 and refreshes[0]["body"]["force_refresh"] is True
    assert len(control.calls(PHONE_API)) == 2


def test_access_token_rejected_twice_is_503(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    alice = mini_login(client, control, mini_client, "alice")
    control.arm_failure(PHONE_API, errcode=42001, times=2)
    code = control.issue_phone_code(MINI_APPID, "13800138001")
    response = bind_phone(client, alice["access_token"], {"code": code})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert len(control.calls(PHONE_API)) == 2


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "status", "error"),
    [
        (40029, 400, "invalid_grant"),
        (45011, 503, "temporarily_unavailable"),
        (-1, 503, "temporarily_unavailable"),
        (40013, 500, "server_error"),
    ],
)
def test_wechat_errors_of_the_phone_api(
    client: FlaskClient,
    control: FakeWeChatControl,
    mini_client: Any,
    errcode: int,
    status: int,
    error: str,
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    control.arm_failure(PHONE_API, errcode=errcode)
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    response = bind_phone(client, tokens["access_token"], {"code": code})
    assert response.status_code == status
    assert response.get_json()["error"] == error
    if status == 503:
        assert int(response.headers["Retry-After"]) > 0
    assert db.session.scalars(
        sa.select(Identity).where(Identity.kind == IdentityKind.PHONE)
    ).all() == []


def test_used_or_unknown_phone_code_is_invalid_grant(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    assert bind_phone(client, tokens["access_token"], {"code": code}).status_code == 200
    replay = bind_phone(client, tokens["access_token"], {"code": code})
    assert (replay.status_code, replay.get_json()["error"]) == (400, "invalid_grant")
    unknown = bind_phone(client, tokens["access_token"], {"code": "made-up"})
    assert unknown.get_json()["error"] == "invalid_grant"


def test_phone_issued_to_another_appid_is_refused(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    code = control.issue_phone_code(MINI_APPID, "13800138000", watermark_appid=OTHER_MINI_APPID)
    response = bind_phone(client, tokens["access_token"], {"code": code})
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_grant")


def test_bearer_token_problems_are_rfc6750_errors__rfc6750_3_1(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    missing = client.post("/wechat/phone", json={"code": "c"})
    assert missing.status_code == 401
    # Auth scheme names are case-insensitive (RFC 9110 §11.1); Authlib writes "bearer".
    assert missing.headers["WWW-Authenticate"].lower().startswith("bearer ")
    bad = bind_phone(client, "not-a-token", {"code": "c"})
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    tokens = mini_login(client, control, mini_client, "alice")
    id_token = bind_phone(client, tokens["id_token"], {"code": "c"})
    assert id_token.status_code == 401
    assert control.calls(PHONE_API) == []


def test_token_of_a_website_client_cannot_bind_a_wechat_phone(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, flow: Any
) -> None:
    tokens = flow.tokens()
    response = bind_phone(client, tokens["access_token"], {"code": "c"})
    assert (response.status_code, response.get_json()["error"]) == (403, "unauthorized_client")


@pytest.mark.parametrize(
    "body",
    [None, [], "code", {}, {"code": ""}, {"code": 5}, {"encryptedData": "x"}, {"other": 1}],
)
def test_malformed_bodies_are_invalid_request(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, body: Any
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    response = bind_phone(client, tokens["access_token"], body)
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_request")
    assert control.calls(PHONE_API) == []


def test_phone_binding_needs_no_csrf_token(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, app: Any
) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    tokens = mini_login(client, control, mini_client, "alice")
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    assert bind_phone(client, tokens["access_token"], {"code": code}).status_code == 200


# --- legacy encryptedData ----------------------------------------------------------------------


def phone_payload(appid: str = MINI_APPID, number: str = "13800138000") -> dict[str, Any]:
    return {
        "phoneNumber": number,
        "purePhoneNumber": number,
        "countryCode": "86",
        "watermark": {"appid": appid, "timestamp": int(time.time())},
    }


def test_legacy_encrypted_data_binds_the_phone(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    from .conftest import exchange

    tokens = exchange(client, mini_client, issued.code).get_json()
    encrypted = encrypt_for_test(issued.session_key, phone_payload(), IV)
    response = bind_phone(client, tokens["access_token"], {"encryptedData": encrypted, "iv": IV})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["phone_number"] == "+8613800138000"
    assert control.calls(PHONE_API) == [] and control.calls(STABLE_TOKEN) == []


def test_legacy_data_with_another_appids_watermark_is_refused(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    from .conftest import exchange

    tokens = exchange(client, mini_client, issued.code).get_json()
    encrypted = encrypt_for_test(issued.session_key, phone_payload(OTHER_MINI_APPID), IV)
    response = bind_phone(client, tokens["access_token"], {"encryptedData": encrypted, "iv": IV})
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_grant")


def test_legacy_data_uses_the_latest_session_key(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    from .conftest import exchange

    first = control.issue_js_code(MINI_APPID, user="alice")
    exchange(client, mini_client, first.code)
    second = control.issue_js_code(MINI_APPID, user="alice")
    tokens = exchange(client, mini_client, second.code).get_json()
    assert first.session_key != second.session_key

    stale = encrypt_for_test(first.session_key, phone_payload(), IV)
    response = bind_phone(client, tokens["access_token"], {"encryptedData": stale, "iv": IV})
    assert response.get_json()["error"] == "invalid_grant"
    fresh = encrypt_for_test(second.session_key, phone_payload(), IV)
    response = bind_phone(client, tokens["access_token"], {"encryptedData": fresh, "iv": IV})
    assert response.status_code == 200


def test_legacy_data_that_is_not_base64_is_invalid_grant(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    garbage = base64.b64encode(os.urandom(32)).decode()
    for body in ({"encryptedData": "%%%", "iv": IV}, {"encryptedData": garbage, "iv": IV}):
        response = bind_phone(client, tokens["access_token"], body)
        assert response.get_json()["error"] == "invalid_grant"
