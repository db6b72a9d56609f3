"""What WeChat sends is data from outside, checked like a client's: a phone number that does not
parse is WeChat's error (502, logged), a NUL in display text is dropped (PostgreSQL cannot
store it), and a hostile body to the phone API is a 400, never a 500."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.claims import profile_values
from idp.identity.models import Account, Identity, IdentityKind
from idp.wechat.fake import FakeWeChatControl
from tests.conftest import csrf_token

from .conftest import MINI_APPID, WEB_APPID, bearer, bind_phone, exchange, mini_login, scan_qr


@pytest.mark.parametrize("phone", ["not-a-number", "12", "1380013800099999"])
def test_an_unparsable_phone_from_wechat_is_a_502_and_logged__rfc9110_15_6_3(
    client: FlaskClient,
    control: FakeWeChatControl,
    mini_client: Any,
    caplog: pytest.LogCaptureFixture,
    phone: str,
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    code = control.issue_phone_code(MINI_APPID, phone)
    with caplog.at_level(logging.ERROR, logger="idp.wechat_login"):
        response = bind_phone(client, tokens["access_token"], {"code": code})
    assert response.status_code == 502, response.get_json()
    body = response.get_json()
    assert body["error"] == "server_error"
    assert "WeChat sent data" in body["error_description"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert "Retry-After" not in response.headers  # asking again gets the same answer
    logged = [r for r in caplog.records if r.name == "idp.wechat_login"]
    assert len(logged) == 1 and "unusable data" in logged[0].getMessage()
    assert MINI_APPID in logged[0].getMessage()
    assert phone not in logged[0].getMessage()  # the number is personal data
    assert db.session.scalars(
        sa.select(Identity).where(Identity.kind == IdentityKind.PHONE)
    ).all() == []


def test_a_nul_in_a_wechat_nickname_is_dropped(
    client: FlaskClient, control: FakeWeChatControl, wechat_apps: None
) -> None:
    control.next_qr_user(WEB_APPID, user="nul", nickname="Ali\x00ce", headimgurl="")
    choice = client.get(scan_qr(client, next_url="/account"))
    assert choice.status_code == 302, choice.get_data(as_text=True)[:300]
    page = client.get("/login/wechat/choose").get_data(as_text=True)
    response = client.post("/login/wechat/create", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    (account,) = db.session.scalars(sa.select(Account)).all()
    assert profile_values(account)["nickname"] == ("Alice", "wechat")
    assert client.get("/account").status_code == 200


def test_a_deeply_nested_json_body_is_invalid_request__rfc6749_5_2(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    for body in (b"[" * 60_000, b'{"code": ' + b"[" * 60_000):
        response = client.post(
            "/wechat/phone",
            data=body,
            content_type="application/json",
            headers=bearer(tokens["access_token"]),
        )
        assert response.status_code == 400, response.get_data(as_text=True)[:300]
        assert response.get_json()["error"] == "invalid_request"
        assert response.get_json()["request_id"]


def test_a_nul_in_an_openid_from_wechat_is_a_502_and_creates_nothing__rfc9110_15_6_3(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    control.arm_failure(
        "/sns/jscode2session", body='{"openid": "o\\u0000x", "session_key": "a2V5"}'
    )
    response = exchange(client, mini_client, "some-code")
    assert response.status_code == 502, response.get_json()
    assert response.get_json()["error"] == "server_error"
    assert db.session.scalars(sa.select(Account)).all() == []
