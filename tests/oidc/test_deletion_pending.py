"""An account pending deletion holds no token (issue 23 item 2): the code and refresh grants
answer `invalid_grant` (RFC 6749 §5.2), userinfo `invalid_token` (RFC 6750 §3.1), introspection
`active: false` (RFC 7662 §2.2). The website's way on is to cancel the deletion, visibly, first.

"Minted in the race" tokens: `schedule_deletion` ends every credential it sees, but a grant that
read the account just before the schedule committed still issues tokens after it. Those are made
here by marking the account pending without the sign-out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.deletion import schedule_deletion
from idp.identity.models import Account
from idp.models_base import utcnow
from tests.account_centre.conftest import post_form
from tests.accounts.test_sms_login import ask_code, enter_code
from tests.conftest import CodeFlow, csrf_token, login, query_of

PHONE = "+8613800138000"


def _pending_without_sign_out(account_id: str) -> None:
    account = db.session.get(Account, account_id)
    account.deletion_requested_at = utcnow()
    account.deletion_due_at = utcnow() + timedelta(days=15)
    db.session.commit()


def test_code_from_a_session_pending_deletion_is_refused__rfc6749_5_2(
    app: Flask, flow: CodeFlow, user: Any
) -> None:
    """Signed in during the grace period, the browser is detoured to the cancel page; a consent
    POST it makes anyway gets a code that the token endpoint refuses."""
    schedule_deletion(user, Actor.user(user.id))
    assert login(flow.browser, PHONE).status_code == 302
    detour = flow.browser.get("/oauth/authorize", query_string=flow.authorize_params())
    assert detour.status_code == 302 and "/account/deletion" in detour.headers["Location"]
    page = flow.browser.get(detour.headers["Location"]).get_data(as_text=True)
    form = {**flow.authorize_params(prompt="consent"), "decision": "allow",
            "csrf_token": csrf_token(page)}
    answer = flow.browser.post("/oauth/authorize", data=form)
    code = query_of(answer.headers["Location"])["code"]
    refused = flow.exchange(code)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


def test_refresh_of_an_account_pending_deletion_is_refused__rfc6749_5_2(
    flow: CodeFlow, user: Any
) -> None:
    tokens = flow.tokens(scope="openid profile offline_access")
    _pending_without_sign_out(user.id)
    refused = flow.refresh(tokens["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


def test_userinfo_and_introspection_of_an_account_pending_deletion__rfc6750_3_1_rfc7662_2_2(
    flow: CodeFlow, user: Any
) -> None:
    tokens = flow.tokens(scope="openid profile offline_access")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert flow.browser.get("/oauth/userinfo", headers=bearer).status_code == 200  # cached now
    _pending_without_sign_out(user.id)
    userinfo = flow.browser.get("/oauth/userinfo", headers=bearer)
    assert userinfo.status_code == 401
    assert 'error="invalid_token"' in userinfo.headers["WWW-Authenticate"]
    auth = (flow.client.client_id, flow.secret)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        answer = flow.browser.post("/oauth/introspect", data={"token": token}, auth=auth)
        assert answer.get_json() == {"active": False}


def test_website_sign_in_by_sms_cancels_visibly_before_any_code__rfc6749_4_1(
    app: Flask, client: FlaskClient, website: Any, user: Any
) -> None:
    """SMS sign-in (the same for password, WeChat and scan: they all make a website session)
    leads to the cancel page; only after "Keep my account" does the RP get its code and tokens."""
    schedule_deletion(user, Actor.user(user.id))
    ask_code(client, phone="138 0013 8000")
    code = app.extensions["idp_sms"].last_code(PHONE)
    assert enter_code(client, code, phone=PHONE).status_code == 302
    flow = CodeFlow(client, website[0], website[1])
    detour = flow.authorize()
    assert detour.status_code == 302 and "/account/deletion" in detour.headers["Location"]
    cancelled = post_form(client, detour.headers["Location"], "/account/deletion/cancel",
                          next="/account")
    assert cancelled.status_code == 303
    tokens = flow.exchange(flow.code())
    assert tokens.status_code == 200, tokens.get_json()
