"""Account deletion (注销): grace period, cancel by signing in, erasure by the worker with a
tombstone, the mini-program's bearer API, and the sub never reused."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.extensions import db
from idp.identity.accounts import find_account, resolve_account
from idp.identity.audit import Actor
from idp.identity.deletion import execute_due_deletions
from idp.identity.models import (
    Account,
    AccountStatus,
    AuditEvent,
    Identity,
    IdentityKind,
    LoginSession,
    ProfileClaim,
)
from idp.maintenance.schedule import run_due_jobs
from idp.models_base import utcnow
from tests.account_centre.conftest import post_form
from tests.conftest import CodeFlow, login

PHONE = "+8613800138000"


def _schedule(signed_in: FlaskClient) -> Any:
    return post_form(signed_in, "/account/delete", confirm="注销")


def test_deletion_starts_grace_period_and_signs_out_everywhere(
    app: Flask, signed_in: FlaskClient, user: Any, website: Any
) -> None:
    other = app.test_client()
    login(other, PHONE)
    tokens = CodeFlow(other, website[0], website[1]).tokens(scope="openid offline_access")
    response = _schedule(signed_in)
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    db.session.expire_all()
    account = db.session.get(Account, user.id)
    assert account.deletion_due_at is not None
    assert abs((account.deletion_due_at - utcnow()) - timedelta(days=15)) < timedelta(minutes=1)
    assert other.get("/account/sessions").status_code == 302
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert other.get("/oauth/userinfo", headers=bearer).status_code == 401
    assert db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "account.deletion_scheduled")).one()


def test_deletion_needs_the_word(app: Flask, signed_in: FlaskClient, user: Any) -> None:
    response = post_form(signed_in, "/account/delete", confirm="yes")
    assert response.status_code == 200 and "DELETE" in response.get_data(as_text=True)
    assert db.session.get(Account, user.id).deletion_due_at is None


def test_signing_in_during_grace_offers_to_cancel(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    _schedule(signed_in)
    browser = app.test_client()
    response = login(browser, PHONE, next_url="/account/sessions")
    assert response.status_code == 302
    detour = browser.get("/account/sessions")
    assert detour.status_code == 302 and "/account/deletion" in detour.headers["Location"]
    page = browser.get(detour.headers["Location"]).get_data(as_text=True)
    assert "Keep my account" in page
    cancelled = post_form(browser, detour.headers["Location"], "/account/deletion/cancel",
                          next="/account/sessions")
    assert cancelled.status_code == 303
    db.session.expire_all()
    assert db.session.get(Account, user.id).deletion_due_at is None
    assert browser.get("/account/sessions").status_code == 200


def test_worker_erases_due_accounts_leaving_a_tombstone(
    app: Flask, signed_in: FlaskClient, user: Any, make_user: Any
) -> None:
    bystander = make_user(phone="+8613900003333")
    _schedule(signed_in)
    account = db.session.get(Account, user.id)
    assert execute_due_deletions() == 0  # not due yet
    account.deletion_due_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    run_due_jobs(app)  # the scheduled jobs of `idp worker`
    db.session.expire_all()
    tombstone = db.session.get(Account, user.id)
    assert tombstone.status == AccountStatus.DELETED
    for model in (Identity, ProfileClaim, LoginSession):
        assert db.session.scalars(select(model).where(model.account_id == user.id)).all() == []
    assert find_account(IdentityKind.PHONE, PHONE) is None
    assert resolve_account(user.id).status == AccountStatus.DELETED  # sub stays taken
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.account_id == user.id)).all()
    assert any(e.action == "account.erased" for e in events)
    assert PHONE not in repr([(e.details, e.reason) for e in events])
    assert "alice@example.com" not in repr([e.details for e in events])
    assert login(app.test_client(), PHONE).status_code == 200
    # The number is free again: a new account gets a new sub.
    again = make_user(phone=PHONE)
    assert again.id != user.id
    assert db.session.get(Account, bystander.id).status == AccountStatus.ACTIVE


def test_miniprogram_api_starts_deletion__rfc6750_rfc9470(
    app: Flask, client: FlaskClient, user: Any, make_client: Any
) -> None:
    from idp.wechat_login.token_exchange import issue_tokens

    mini, _ = make_client(name="Mini", public=True, wechat_appid="wxmini0000000001",
                          grant_types=["urn:ietf:params:oauth:grant-type:token-exchange"])
    with app.test_request_context():
        fresh = issue_tokens(mini, user, "openid", int(time.time()))
        stale = issue_tokens(mini, user, "openid", int(time.time()) - 3600)
    db.session.commit()
    url = "/account/api/deletion"
    assert client.post(url, json={"confirm": True}).status_code == 401
    old = client.post(url, json={"confirm": True},
                      headers={"Authorization": f"Bearer {stale['access_token']}"})
    assert old.status_code == 401
    assert old.get_json()["error"] == "insufficient_user_authentication"
    bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert client.post(url, json={"confirm": "yes"}, headers=bearer).status_code == 400
    assert client.post(url, data="[", headers=bearer).status_code == 400
    started = client.post(url, json={"confirm": True}, headers=bearer)
    assert started.status_code == 202, started.get_json()
    assert started.get_json()["sub"] == user.id
    assert started.headers["Cache-Control"] == "no-store"
    db.session.expire_all()
    assert db.session.get(Account, user.id).deletion_due_at is not None


def test_api_refuses_a_non_miniprogram_token(app: Flask, client: FlaskClient, user: Any,
                                             make_client: Any) -> None:
    from idp.wechat_login.token_exchange import issue_tokens

    web, _ = make_client(name="Web")
    with app.test_request_context():
        tokens = issue_tokens(web, user, "openid", int(time.time()))
    db.session.commit()
    response = client.post("/account/api/deletion", json={"confirm": True},
                           headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 403
    assert db.session.get(Account, user.id).deletion_due_at is None


def test_admin_can_cancel_or_erase_through_the_engine(app: Flask, user: Any) -> None:
    from idp.identity.deletion import (
        cancel_deletion,
        erase_account,
        pending_deletions,
        schedule_deletion,
    )

    schedule_deletion(user, Actor.user(user.id))
    assert [a.id for a in pending_deletions()] == [user.id]
    cancel_deletion(user, Actor.admin("admin-1"))
    assert pending_deletions() == []
    schedule_deletion(user, Actor.user(user.id))
    erase_account(user, Actor.admin("admin-1"))
    assert db.session.get(Account, user.id).status == AccountStatus.DELETED


def test_a_failing_erasure_does_not_stop_the_others(app: Flask, make_user: Any,
                                                    monkeypatch: Any) -> None:
    import idp.identity.deletion as deletion
    from idp.identity.deletion import schedule_deletion

    first, second = make_user(phone="+8613900007777"), make_user(phone="+8613900008888")
    for account in (first, second):
        schedule_deletion(account, Actor.user(account.id))
        account.deletion_due_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    real = deletion._erase

    def flaky(account_id: str, actor: Actor) -> dict[str, int]:
        if account_id == first.id:
            raise RuntimeError("disk full")
        return real(account_id, actor)

    monkeypatch.setattr(deletion, "_erase", flaky)
    assert execute_due_deletions() == 1
    db.session.expire_all()
    assert db.session.get(Account, first.id).status == AccountStatus.ACTIVE  # next round
    assert db.session.get(Account, second.id).status == AccountStatus.DELETED
