"""The mini-program and an account pending deletion (issue 23 item 2): after `/account/api/deletion`
no grant gives it tokens — the `wx.login()` exchange, its second-factor step — and no token of
it answers a scan (`identity.status.may_hold_tokens`, the one rule)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.deletion import schedule_deletion
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.oidc.models import RefreshToken
from idp.wechat.fake import FakeWeChatControl
from tests.oidc.helpers import id_token_claims
from tests.wechat_login.test_mfa_exchange import enrol_totp, mfa_required, second_step
from tests.wechat_login.test_scan_login import show_code

from .conftest import bearer, exchange, mini_login


def _account(browser: FlaskClient, tokens: dict[str, Any]) -> Account:
    return db.session.get(Account, id_token_claims(browser, tokens["id_token"])["sub"])


def test_exchange_after_deletion_request_is_invalid_grant__rfc6749_5_2(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    started = client.post("/account/api/deletion", json={"confirm": True},
                          headers=bearer(tokens["access_token"]))
    assert started.status_code == 202, started.get_json()
    refresh_tokens = db.session.scalar(sa.select(sa.func.count()).select_from(RefreshToken))

    issued = control.issue_js_code(mini_client.wechat_appid, user="alice")
    refused = exchange(client, mini_client, issued.code)

    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["error"] == "invalid_grant"
    assert "pending deletion" in refused.get_json()["error_description"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RefreshToken)) == (
        refresh_tokens
    )
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    again = client.post("/oauth/token", data={"grant_type": "refresh_token",
                                              "client_id": mini_client.client_id,
                                              "refresh_token": tokens["refresh_token"]})
    assert again.get_json()["error"] == "invalid_grant"


def test_second_factor_step_of_an_account_pending_deletion_is_invalid_grant__rfc6749_5_2(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    account = _account(client, mini_login(client, control, mini_client, "alice"))
    totp, _codes = enrol_totp(account)
    challenge = mfa_required(client, control, mini_client, "alice", acr_values="mfa")
    schedule_deletion(account, Actor.user(account.id))

    refused = second_step(client, mini_client, challenge["mfa_token"], otp=totp.now())

    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


def test_a_token_of_an_account_pending_deletion_answers_no_scan__rfc6750_3_1(
    app: Flask, client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    """A token minted in the race with the deletion request (the exchange read the account just
    before the schedule committed, so the sign-out missed it)."""
    tokens = mini_login(app.test_client(), control, mini_client, "alice")
    account = _account(client, tokens)
    account.deletion_requested_at = utcnow()
    account.deletion_due_at = utcnow() + timedelta(days=15)
    db.session.commit()
    ticket = show_code(client)

    answer = client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"},
                         headers=bearer(tokens["access_token"]))

    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
