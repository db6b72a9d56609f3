"""Who received my data (PIPL Art. 44; issue 28 item 5): the record of the claims each client
received, written by the token endpoint's existing writes only (code redemption, refresh, token
exchange) as an upsert, read by the apps page; withdrawing consent revokes that client's refresh
and access tokens (RFC 7009 semantics, through `revoke_app`) and sends it — and no other party —
a `consent-revoked` Security Event Token (RFC 8417). SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.events.models import EventDelivery
from idp.extensions import db
from idp.identity.models import AuditEvent
from idp.oidc.models import ClaimRelease, Consent
from idp.oidc.releases import forget_recent
from tests.account_centre.conftest import post_form
from tests.conftest import CodeFlow, login

MINI_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"


def releases() -> list[ClaimRelease]:
    db.session.expire_all()
    return list(db.session.scalars(select(ClaimRelease).order_by(ClaimRelease.id)))


def test_code_redemption_records_the_claims_released__oidc_core_5_4(
    signed_in: FlaskClient, make_client: Any, user: Any
) -> None:
    rp, secret = make_client(name="Shop")
    CodeFlow(signed_in, rp, secret).tokens(scope="openid profile phone")
    [row] = releases()
    assert (row.account_id, row.client_id, row.scope) == (user.id, rp.client_id,
                                                          "openid phone profile")
    assert {"sub", "name", "nickname", "phone_number", "phone_number_verified"} <= set(row.claims)
    assert "email" not in row.claims
    assert row.first_released_at == row.last_released_at


def test_refresh_moves_the_latest_release_as_an_upsert__rfc6749_6(
    signed_in: FlaskClient, make_client: Any
) -> None:
    rp, secret = make_client(name="Shop")
    flow = CodeFlow(signed_in, rp, secret)
    tokens = flow.tokens(scope="openid email offline_access")
    [first] = releases()
    before = first.last_released_at
    db.session.execute(ClaimRelease.__table__.update().values(
        first_released_at=before.replace(year=before.year - 1),
        last_released_at=before.replace(year=before.year - 1)))
    db.session.commit()
    forget_recent()  # the year passed for this process too
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
    [row] = releases()  # still one row: the same (account, client, scope)
    assert row.last_released_at >= before
    assert row.first_released_at.year == before.year - 1
    assert {"email", "email_verified"} <= set(row.claims)


def test_a_refresh_within_the_interval_writes_and_locks_nothing__rfc6749_6(
    signed_in: FlaskClient, make_client: Any, app: Flask, backend: str
) -> None:
    """The record is fresh (moved less than RECORD_INTERVAL ago, same claims): a refresh leaves
    it as it is and takes no lock on it — another transaction holding its row lock does not
    hold the refresh up (every refresh of one account and client used to queue on that row)."""
    rp, secret = make_client(name="Shop")
    flow = CodeFlow(signed_in, rp, secret)
    tokens = flow.tokens(scope="openid email offline_access")
    [first] = releases()
    db.session.commit()
    locked, refreshed, released = threading.Event(), threading.Event(), threading.Event()
    engine = db.engine

    def hold_the_row_lock() -> None:
        with engine.connect() as holder:
            holder.execute(select(ClaimRelease).with_for_update())
            locked.set()
            refreshed.wait(timeout=10)  # a refresh that queues on the lock waits this long
            released.set()
            holder.rollback()

    holder = threading.Thread(target=hold_the_row_lock)
    if backend == "postgresql":  # SQLite has no row locks
        holder.start()
        assert locked.wait(timeout=10)
    answer = flow.refresh(tokens["refresh_token"])
    assert not released.is_set()  # the refresh did not wait for the lock
    refreshed.set()
    if holder.is_alive():
        holder.join()
    assert answer.status_code == 200, answer.get_json()
    [row] = releases()
    assert row.last_released_at == first.last_released_at


def test_a_refresh_after_this_process_recorded_the_release_sends_no_upsert__rfc6749_6(
    signed_in: FlaskClient, make_client: Any, app: Flask
) -> None:
    """Within RECORD_INTERVAL of this process's own write of the record (same claims), the
    rotation's statement leaves the upsert out — it would find the record fresh and write
    nothing — and the record stays as written; once the interval has passed (here: forgotten),
    the record moves on again."""
    from sqlalchemy import event

    rp, secret = make_client(name="Shop")
    flow = CodeFlow(signed_in, rp, secret)
    tokens = flow.tokens(scope="openid email offline_access")
    [first] = releases()
    db.session.commit()
    sent: list[str] = []

    def heard(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", heard)
    try:
        answer = flow.refresh(tokens["refresh_token"])
        assert answer.status_code == 200, answer.get_json()
        rotations = [text for text in sent if "UPDATE refresh_token" in text]
        assert rotations and not any("claim_release" in text for text in rotations)
        [row] = releases()
        assert row.last_released_at == first.last_released_at
        db.session.execute(ClaimRelease.__table__.update().values(
            last_released_at=first.last_released_at.replace(year=first.last_released_at.year - 1)))
        db.session.commit()
        with app.app_context():
            forget_recent()
        sent.clear()
        answer = flow.refresh(answer.get_json()["refresh_token"])
        assert answer.status_code == 200, answer.get_json()
        assert any("claim_release" in text for text in sent)
    finally:
        event.remove(db.engine, "before_cursor_execute", heard)
    [row] = releases()
    assert row.last_released_at.year == first.last_released_at.year


def test_userinfo_and_introspection_never_write_the_record__rfc7662_2(
    signed_in: FlaskClient, make_client: Any
) -> None:
    rp, secret = make_client(name="Shop")
    tokens = CodeFlow(signed_in, rp, secret).tokens(scope="openid profile")
    db.session.execute(ClaimRelease.__table__.delete())
    db.session.commit()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert signed_in.get("/oauth/userinfo", headers=bearer).status_code == 200
    introspected = signed_in.post("/oauth/introspect", auth=(rp.client_id, secret),
                                  data={"token": tokens["access_token"]})
    assert introspected.get_json()["active"] is True
    assert releases() == []


def test_token_exchange_records_the_mini_program_release__rfc8693_2_2(
    app: Flask, user: Any, make_client: Any
) -> None:
    from idp.wechat_login.token_exchange import issue_tokens

    mini, _ = make_client(name="Mini", public=True, wechat_appid="wxmini0000000001",
                          grant_types=[MINI_GRANT])
    with app.test_request_context():
        issue_tokens(mini, user, "openid phone", int(time.time()))
    [row] = releases()  # committed by the exchange's own write, no refresh token needed
    assert row.client_id == mini.client_id and "phone_number" in row.claims


def test_the_apps_page_lists_who_received_which_claims_and_when(
    signed_in: FlaskClient, make_client: Any
) -> None:
    rp, secret = make_client(name="Shop")
    CodeFlow(signed_in, rp, secret).tokens(scope="openid phone")
    page = signed_in.get("/account/apps").get_data(as_text=True)
    assert "Shop" in page and "phone_number" in page
    assert page.count("<time datetime=") >= 2  # first and latest
    assert "Withdraw consent" in page


def test_withdrawing_consent_revokes_tokens_and_tells_that_client_only__rfc8417(
    app: Flask, signed_in: FlaskClient, make_client: Any, user: Any
) -> None:
    rp, secret = make_client(name="Shop", events_uri="https://shop.example/events")
    other, other_secret = make_client(name="Other", events_uri="https://other.example/events",
                                      event_types=["consent-revoked"])
    flow = CodeFlow(signed_in, rp, secret)
    tokens = flow.tokens(scope="openid profile offline_access")
    CodeFlow(signed_in, other, other_secret).tokens(scope="openid")
    response = post_form(signed_in, "/account/apps", f"/account/apps/{rp.client_id}/revoke")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.scalars(select(Consent.client_id)).all() == [other.client_id]
    assert flow.refresh(tokens["refresh_token"]).status_code == 400
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert signed_in.get("/oauth/userinfo", headers=bearer).status_code == 401
    deliveries = db.session.scalars(
        select(EventDelivery).where(EventDelivery.event_type == "consent-revoked")).all()
    assert [row.client_id for row in deliveries] == [rp.client_id]  # the default subscription
    claims = json.loads(deliveries[0].payload)
    assert claims["aud"] == rp.client_id
    body = claims["events"]["urn:idp:secevent:consent-revoked"]
    assert body["sub"] == user.id and body["client_id"] == rp.client_id
    assert "profile" in body["scopes"] and body["channel"] == "account_centre"
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "app.revoke")).one()
    # The record stays: the page still says who received what, under "before".
    page = signed_in.get("/account/apps").get_data(as_text=True)
    assert 'id="past-recipients"' in page and "Shop" in page


def test_an_unsubscribed_client_is_not_sent_the_event(
    signed_in: FlaskClient, make_client: Any
) -> None:
    rp, secret = make_client(name="Shop", events_uri="https://shop.example/events",
                             event_types=["account-merged"])
    CodeFlow(signed_in, rp, secret).tokens(scope="openid")
    assert post_form(signed_in, "/account/apps",
                     f"/account/apps/{rp.client_id}/revoke").status_code == 303
    assert db.session.scalars(select(EventDelivery).where(
        EventDelivery.event_type == "consent-revoked")).all() == []


def test_withdrawing_another_accounts_app_is_404(
    app: Flask, signed_in: FlaskClient, make_client: Any, make_user: Any
) -> None:
    rp, secret = make_client(name="Shop")
    make_user(phone="+8613900002222")
    stranger = app.test_client()
    login(stranger, "+8613900002222")
    CodeFlow(stranger, rp, secret).tokens(scope="openid")
    response = post_form(signed_in, "/account/security", f"/account/apps/{rp.client_id}/revoke")
    assert response.status_code == 404
    assert len(db.session.scalars(select(Consent)).all()) == 1
    assert "Shop" not in signed_in.get("/account/apps").get_data(as_text=True)


def test_erasure_deletes_the_record(app: Flask, signed_in: FlaskClient, make_client: Any,
                                    user: Any) -> None:
    from idp.identity.audit import Actor
    from idp.identity.deletion import erase_account, schedule_deletion

    rp, secret = make_client(name="Shop")
    CodeFlow(signed_in, rp, secret).tokens(scope="openid")
    assert releases()
    schedule_deletion(user, Actor.user(user.id))
    erase_account(user, Actor.admin("admin-1"))
    db.session.commit()
    assert releases() == []


def test_a_record_another_process_moved_is_kept_for_its_own_interval_only__rfc6749_6(
    signed_in: FlaskClient, make_client: Any, app: Flask
) -> None:
    """This process did not write the record lately, another did: the rotation's statement
    holds the upsert, which finds the record fresh and writes nothing — and what this process
    remembers is that record's time, not its own, so it leaves the upsert out only until the
    other process's interval ends (the record never lags a release by more than
    RECORD_INTERVAL)."""
    from datetime import timedelta

    from idp.models_base import utcnow
    from idp.oidc import releases as records

    rp, secret = make_client(name="Shop")
    flow = CodeFlow(signed_in, rp, secret)
    tokens = flow.tokens(scope="openid email offline_access")
    [first] = releases()
    by_another = utcnow() - timedelta(seconds=30)
    db.session.execute(ClaimRelease.__table__.update().values(last_released_at=by_another))
    db.session.commit()
    forget_recent()
    answer = flow.refresh(tokens["refresh_token"])
    assert answer.status_code == 200, answer.get_json()
    [row] = releases()
    assert abs((row.last_released_at - by_another).total_seconds()) < 0.01  # found fresh
    values = records.release_values(first.account_id, rp.client_id,
                                     "openid email offline_access", by_another + timedelta(
                                         seconds=59))
    assert records.recorded_lately(values)
    later = records.release_values(first.account_id, rp.client_id,
                                    "openid email offline_access",
                                    by_another + records.RECORD_INTERVAL + timedelta(seconds=1))
    assert not records.recorded_lately(later)  # its interval is over, not ours
