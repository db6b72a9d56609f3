"""The app secrets and the session_key never reach a response or a log line; at rest they are
encrypted."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from idp.extensions import db
from idp.wechat.crypto import encrypt_for_test
from idp.wechat.fake import FakeWeChatControl
from idp.wechat.models import WeChatAccessToken, WeChatApp, WeChatSessionKey
from idp.wechat_login.session_keys import session_key_of
from tests.conftest import csrf_token

from .conftest import MINI_APPID, SECRETS, WEB_APPID, bind_phone, exchange, scan_qr

IV = base64.b64encode(b"fedcba9876543210").decode()


def test_session_key_is_stored_encrypted_and_replaced_at_each_login(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    first = control.issue_js_code(MINI_APPID, user="alice")
    exchange(client, mini_client, first.code)
    row = db.session.get(WeChatSessionKey, (MINI_APPID, first.openid))
    assert row is not None and first.session_key not in row.session_key_encrypted
    assert session_key_of(MINI_APPID, first.openid) == first.session_key

    second = control.issue_js_code(MINI_APPID, user="alice")
    exchange(client, mini_client, second.code)
    rows = db.session.scalars(sa.select(WeChatSessionKey)).all()
    assert len(rows) == 1
    assert session_key_of(MINI_APPID, first.openid) == second.session_key


def test_secrets_and_session_key_never_reach_a_response_or_a_log_line(
    client: FlaskClient,
    control: FakeWeChatControl,
    mini_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    def keep(response: Any) -> Any:
        bodies.append(response.get_data(as_text=True) + str(dict(response.headers)))
        return response

    issued = control.issue_js_code(MINI_APPID, user="alice")
    tokens = keep(exchange(client, mini_client, issued.code)).get_json()
    # Every way the phone binding can go: a code, a rejected token, the legacy form, failures.
    control.arm_failure("/wxa/business/getuserphonenumber", errcode=40001)
    keep(bind_phone(client, tokens["access_token"], {
        "code": control.issue_phone_code(MINI_APPID, "13800138000"),
    }))
    payload = {
        "purePhoneNumber": "13800138000",
        "countryCode": "86",
        "watermark": {"appid": MINI_APPID, "timestamp": 1},
    }
    encrypted = encrypt_for_test(issued.session_key, payload, IV)
    fresh = tokens  # the first binding did not merge, so the caller's token still works
    keep(bind_phone(client, fresh["access_token"], {"encryptedData": encrypted, "iv": IV}))
    for errcode in (40125, -1, 40029):
        control.arm_failure("/sns/jscode2session", errcode=errcode)
        keep(exchange(client, mini_client, control.issue_js_code(MINI_APPID, user="bob").code))
    control.arm_failure("/cgi-bin/stable_token", errcode=40125)
    keep(bind_phone(client, fresh["access_token"], {"code": "x"}))
    # The website flow, a new user who creates an account.
    control.next_qr_user(WEB_APPID, user="carol")
    keep(client.get(scan_qr(client)))
    page = keep(client.get("/login/wechat/choose")).get_data(as_text=True)
    keep(client.post("/login/wechat/create", data={"csrf_token": csrf_token(page)}))

    stable_tokens = [call["body"] for call in control.calls("/cgi-bin/stable_token")]
    assert stable_tokens, "the access token was fetched"
    forbidden = [*SECRETS, issued.session_key]
    everything = caplog.text + "\n".join(bodies)
    for value in forbidden:
        assert value not in everything
    for record in caplog.records:
        for value in forbidden:
            assert value not in str(record.args) and value not in record.getMessage()


def test_app_secret_and_access_token_are_encrypted_at_rest(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    tokens = exchange(client, mini_client, issued.code).get_json()
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    assert bind_phone(client, tokens["access_token"], {"code": code}).status_code == 200
    dump = " ".join(
        str(value)
        for model in (WeChatApp, WeChatAccessToken, WeChatSessionKey)
        for row in db.session.scalars(sa.select(model))
        for value in vars(row).values()
    )
    wechat_access_token = control.calls("/wxa/business/getuserphonenumber")[0]["query"][
        "access_token"
    ]
    for value in (*SECRETS, issued.session_key, wechat_access_token):
        assert value not in dump
