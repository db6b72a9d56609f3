"""The person's own copy of their data (PIPL Art. 45; issue 28 item 4): "Download my data" in the
account centre and `GET /account/api/data` for the mini-program — one JSON document, after a
recent sign-in, rate-limited in the store every process shares, audited, an attachment no cache
keeps; never a secret, and never another account's row. SQLite and PostgreSQL; the throttle in
the throttle file and in Redis (two IdP processes)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp import create_app
from idp.accounts.models import LoginEvent
from idp.extensions import db
from idp.identity.models import AuditEvent, Identity, LoginSession
from idp.models_base import utcnow
from idp.second_factor import factors
from idp.second_factor.models import SecondFactor, SecondFactorKind
from idp.second_factor.recovery_codes import new_recovery_codes
from tests.account_centre.conftest import post_form
from tests.conftest import CodeFlow, IsolatedClient, login
from tests.redis_db import redis_url

PHONE = "+8613800138000"
MINI_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
REDIS_URL = redis_url(2)


def download(browser: FlaskClient) -> Any:
    return post_form(browser, "/account/data", "/account/data/download")


def exports() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "account.data_export")))


def age_sessions(app: Flask, account_id: str) -> None:
    window = int(app.config["IDP_REAUTH_SECONDS"])
    rows = db.session.scalars(select(LoginSession).where(LoginSession.account_id == account_id))
    for row in rows:
        row.auth_time = row.auth_time - timedelta(seconds=window + 60)
    db.session.commit()


def mini_tokens(app: Flask, make_client: Any, account: Any, age: int = 0) -> dict[str, Any]:
    from idp.wechat_login.token_exchange import issue_tokens

    mini, _ = make_client(name="Mini", public=True, wechat_appid="wxmini0000000001",
                          grant_types=[MINI_GRANT])
    with app.test_request_context():
        tokens = issue_tokens(mini, account, "openid phone", int(time.time()) - age)
    db.session.commit()
    return tokens


# --- the account centre's download -------------------------------------------------------------


def test_download_is_an_attachment_no_cache_keeps_and_is_audited__rfc6266_rfc9111(
    app: Flask, signed_in: FlaskClient, make_client: Any, user: Any
) -> None:
    rp, secret = make_client(name="Shop", events_uri="https://shop.example/events",
                             event_types=["profile-updated"])
    CodeFlow(signed_in, rp, secret).tokens(scope="openid profile phone")
    from idp.identity.accounts import set_claim
    from idp.identity.audit import Actor

    set_claim(user, "nickname", "Ally", "user", Actor.user(user.id))
    db.session.commit()
    response = download(signed_in)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="my-data-')
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    document = json.loads(response.get_data(as_text=True))
    assert document["sub"] == user.id
    assert document["profile"]["claims"]["name"] == "Alice"
    assert document["profile"]["claims"]["nickname"] == "Ally"
    kinds = {way["kind"]: way for way in document["ways_in"]["identities"]}
    assert kinds["phone"]["value"] == PHONE and kinds["email"]["value"] == "alice@example.com"
    assert "value" not in kinds["password"]
    [shop] = document["apps"]
    assert shop["name"] == "Shop" and shop["connected"] is True
    [received] = shop["received"]
    assert "phone_number" in received["claims"] and received["first_received_at"].endswith("Z")
    assert [s["channel"] for s in document["sessions"]] == ["website_password"]
    assert document["sign_ins"] and document["sign_ins"][0]["channel"] == "website_password"
    [event] = [e for e in document["events"] if e["type"] == "profile-updated"]
    assert event["to"] == "Shop" and event["status"] == "pending"
    assert "nickname" in event["event"]["urn:idp:secevent:profile-updated"]["claims"]
    [audited] = exports()
    assert (audited.account_id, audited.actor_id, audited.reason) == (
        user.id, user.id, "account centre")


def test_download_needs_a_recent_sign_in__nist_800_63b_6_1_2_1(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    age_sessions(app, user.id)
    response = download(signed_in)
    assert response.status_code == 302
    assert "/account/reauth" in response.headers["Location"]
    assert "next=/account/data" in response.headers["Location"]
    assert exports() == []


def test_download_without_the_csrf_token_is_refused(signed_in: FlaskClient) -> None:
    assert signed_in.post("/account/data/download").status_code == 400
    assert exports() == []


def test_a_signed_out_browser_is_sent_to_sign_in(client: FlaskClient, user: Any) -> None:
    response = client.post("/account/data/download")
    assert response.status_code in (302, 400)
    assert exports() == []


def test_the_copy_holds_no_secret_hash_code_or_key(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    import pyotp

    from idp.wechat_login.session_keys import remember_session_key

    totp_secret = pyotp.random_base32()
    factors.add_totp(user, totp_secret, "Authenticator app")
    codes = new_recovery_codes(user)
    db.session.add(SecondFactor(account_id=user.id, kind=SecondFactorKind.WEBAUTHN,
                                label="Phone passkey", credential_id="cred-id-passkey-0001",
                                public_key=b"\x01\x02", device_type="multi_device",
                                created_at=utcnow()))
    remember_session_key("wxmini0000000001", "openid-alice", "c2Vzc2lvbi1rZXktYWxpY2U=")
    db.session.commit()
    text = download(signed_in).get_data(as_text=True)
    document = json.loads(text)
    assert {f["kind"] for f in document["ways_in"]["second_factors"]} == {"totp", "webauthn"}
    assert document["ways_in"]["recovery_codes"] == {"issued": 10, "unused": 10}
    password = db.session.scalars(select(Identity).where(Identity.kind == "password")).one()
    factor = db.session.scalars(select(SecondFactor).where(SecondFactor.kind == "totp")).one()
    session_ids = db.session.scalars(select(LoginSession.id)).all()
    secrets = [password.secret_hash, password.value, totp_secret, factor.secret_encrypted,
               "cred-id-passkey-0001", "c2Vzc2lvbi1rZXktYWxpY2U=", *codes, *session_ids]
    assert [secret for secret in secrets if secret and secret in text] == []
    assert "secret" not in text.lower() and "hash" not in text.lower()


def test_another_accounts_data_is_never_included(
    app: Flask, signed_in: FlaskClient, make_client: Any, make_user: Any, user: Any
) -> None:
    rp, secret = make_client(name="Shop", events_uri="https://shop.example/events",
                             event_types=["profile-updated"])
    stranger = make_user(phone="+8613900003333", name="Mallory", email="mallory@example.com")
    elsewhere = app.test_client()
    login(elsewhere, "+8613900003333")
    CodeFlow(elsewhere, rp, secret).tokens(scope="openid phone")
    from idp.identity.accounts import set_claim
    from idp.identity.audit import Actor

    set_claim(stranger, "nickname", "Mal", "user", Actor.user(stranger.id))
    db.session.add(LoginEvent(account_id=stranger.id, channel="miniprogram"))
    db.session.commit()
    text = download(signed_in).get_data(as_text=True)
    for theirs in (stranger.id, "+8613900003333", "Mallory", "mallory@example.com", "Mal\"",
                   "Shop", "miniprogram"):
        assert theirs not in text, theirs
    assert user.id in text


def test_the_copy_includes_the_accounts_merged_into_it(
    app: Flask, signed_in: FlaskClient, make_user: Any, user: Any
) -> None:
    from idp.identity.audit import Actor
    from idp.identity.merge import merge_accounts
    from idp.identity.rules import MergeRule, Proof

    other = make_user(phone="+8613900004444")
    db.session.add(LoginEvent(account_id=other.id, channel="miniprogram"))
    db.session.commit()
    merge_accounts(user, other, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("x"),
                   actor=Actor.admin("admin-1"))
    db.session.commit()
    document = json.loads(download(signed_in).get_data(as_text=True))
    assert document["merged_subs"] == [other.id]
    assert "miniprogram" in [s["channel"] for s in document["sign_ins"]]


# --- the mini-program's API --------------------------------------------------------------------


def test_miniprogram_api_answers_the_same_copy__rfc6750_rfc9470(
    app: Flask, client: FlaskClient, user: Any, make_client: Any
) -> None:
    fresh = mini_tokens(app, make_client, user)
    url = "/account/api/data"
    assert client.get(url).status_code == 401
    response = client.get(url, headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    document = response.get_json()
    assert document["sub"] == user.id
    assert [app_["name"] for app_ in document["apps"]] == ["Mini"]
    assert [e.reason for e in exports()] == ["mini-program"]


def test_miniprogram_api_refuses_an_old_sign_in__rfc9470_3(
    app: Flask, client: FlaskClient, user: Any, make_client: Any
) -> None:
    stale = mini_tokens(app, make_client, user, age=3600)
    response = client.get("/account/api/data",
                          headers={"Authorization": f"Bearer {stale['access_token']}"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "insufficient_user_authentication"
    assert exports() == []


def test_miniprogram_api_refuses_another_clients_token(
    app: Flask, client: FlaskClient, user: Any, make_client: Any
) -> None:
    from idp.wechat_login.token_exchange import issue_tokens

    web, _ = make_client(name="Web")
    with app.test_request_context():
        tokens = issue_tokens(web, user, "openid", int(time.time()))
    db.session.commit()
    response = client.get("/account/api/data",
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 403
    assert exports() == []


# --- the shared rate limit ---------------------------------------------------------------------


def _redis_reason() -> str | None:
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1) as connection:
            connection.ping()
    except Exception as error:  # noqa: BLE001
        return f"Redis not reachable at IDP_TEST_REDIS_URL ({type(error).__name__})"
    return None


class TestTheSharedRateLimit:
    """Exports are counted per account in the throttle store every process shares: the
    throttle file of the machine, or Redis (`IDP_REDIS_URL`) for several machines."""

    @pytest.fixture(params=["file", "redis"])
    def app_config(self, request: pytest.FixtureRequest,
                   app_config: dict[str, Any]) -> dict[str, Any]:
        if request.param == "redis":
            if reason := _redis_reason():
                pytest.skip(reason)
            app_config["IDP_REDIS_URL"] = REDIS_URL
        app_config["IDP_THROTTLE_ENABLED"] = True
        return app_config

    def test_downloads_share_one_limit_across_the_browser_and_the_api(
        self, app: Flask, signed_in: FlaskClient, user: Any, make_client: Any
    ) -> None:
        tokens = mini_tokens(app, make_client, user)
        assert download(signed_in).status_code == 200
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert signed_in.get("/account/api/data", headers=bearer).status_code == 200
        assert download(signed_in).status_code == 200
        refused = download(signed_in)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert "Try again in" in refused.get_data(as_text=True)
        api_refused = signed_in.get("/account/api/data", headers=bearer)
        assert api_refused.status_code == 429
        assert api_refused.get_json()["error"] == "temporarily_unavailable"
        assert len(exports()) == 3  # a refusal hands nothing out


class TestTwoProcesses:
    @pytest.fixture
    def app_config(self, app_config: dict[str, Any]) -> dict[str, Any]:
        if reason := _redis_reason():
            pytest.skip(reason)
        app_config["IDP_REDIS_URL"] = REDIS_URL
        app_config["IDP_THROTTLE_ENABLED"] = True
        return app_config

    def test_the_limit_holds_across_two_idp_processes_sharing_redis(
        self, app: Flask, app_config: dict[str, Any], user: Any, tmp_path: Path
    ) -> None:
        """Two apps with instance folders (and throttle files) of their own: only Redis and
        the database are common to them, as for two machines."""
        second = create_app({**app_config, "IDP_INSTANCE_PATH": str(tmp_path / "second")})
        second.test_client_class = IsolatedClient
        first_browser, second_browser = app.test_client(), second.test_client()
        assert login(first_browser, PHONE).status_code == 302
        with second.app_context():
            try:
                assert login(second_browser, PHONE).status_code == 302
                assert download(second_browser).status_code == 200
            finally:
                db.session.remove()
        assert download(first_browser).status_code == 200
        with second.app_context():
            try:
                assert download(second_browser).status_code == 200
                assert download(second_browser).status_code == 429
            finally:
                db.session.remove()
                db.engine.dispose()
        assert download(first_browser).status_code == 429
        assert len(exports()) == 3
