"""A password reset by SMS signs the account out everywhere: sessions, refresh-token families,
earlier access tokens, with back-channel logout to the relying parties (issue 10, item 3).
The user's new session, started right after, works."""

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from idp.events.delivery import deliver_due
from idp.extensions import db
from tests.conftest import CodeFlow, csrf_token, login
from tests.oidc.helpers import id_token_claims

PHONE = "+8613800138000"
NEW_PASSWORD = "brand new secret"


@pytest.fixture
def receiver() -> Iterator[dict[str, Any]]:
    """A relying party's back-channel logout URI, on loopback."""
    received: list[dict[str, str]] = []

    @Request.application
    def rp(request: Request) -> Response:
        received.append(request.form.to_dict())
        return Response("", status=200)

    server = make_server("127.0.0.1", 0, rp, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/backchannel", "received": received}
    server.shutdown()


@pytest.fixture
def site(make_client: Any, receiver: dict[str, Any]) -> tuple[Any, str]:
    return make_client(name="Shop", first_party=True, backchannel_logout_uri=receiver["url"])


def reset_by_sms(app: Flask, browser: Any) -> Any:
    page = browser.get("/reset")
    browser.post("/reset", data={"phone": PHONE, "csrf_token": csrf_token(page.get_data(True))})
    code = app.extensions["idp_sms"].last_code(PHONE)
    confirm = browser.get("/reset/confirm", query_string={"phone": PHONE})
    return browser.post(
        "/reset/confirm",
        data={
            "phone": PHONE,
            "code": code,
            "password": NEW_PASSWORD,
            "csrf_token": csrf_token(confirm.get_data(as_text=True)),
        },
    )


def userinfo_status(browser: Any, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return int(browser.get("/oauth/userinfo", headers=headers).status_code)


def test_reset_ends_every_session_token_and_tells_the_rps__backchannel_logout_2_5(
    app: Flask, user: Any, site: tuple[Any, str], receiver: dict[str, Any]
) -> None:
    thief = app.test_client()
    login(thief, PHONE)
    stolen = CodeFlow(thief, site[0], site[1]).tokens(scope="openid profile offline_access")
    stolen_sid = id_token_claims(thief, stolen["id_token"])["sid"]
    assert thief.get("/account").status_code == 200

    done = reset_by_sms(app, app.test_client())
    assert done.status_code == 302

    assert thief.get("/account").headers["Location"].startswith("/login")
    refused = CodeFlow(thief, site[0], site[1]).refresh(stolen["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert userinfo_status(thief, stolen["access_token"]) == 401

    assert deliver_due().delivered == 1
    [call] = receiver["received"]
    keys = KeySet.import_key_set(thief.get("/oauth/jwks").get_json())
    logout_token = jwt.decode(call["logout_token"], keys, algorithms=["RS256"]).claims
    assert logout_token["sub"] == user.id and logout_token["sid"] == stolen_sid


def test_the_new_session_after_a_reset_works_at_once(
    app: Flask, user: Any, site: tuple[Any, str]
) -> None:
    reset_by_sms(app, app.test_client())
    owner = app.test_client()
    assert login(owner, PHONE, password=NEW_PASSWORD).status_code == 302
    flow = CodeFlow(owner, site[0], site[1])
    tokens = flow.tokens(scope="openid profile offline_access")

    assert owner.get("/account").status_code == 200
    assert userinfo_status(owner, tokens["access_token"]) == 200
    refreshed = flow.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200
    assert userinfo_status(owner, refreshed.get_json()["access_token"]) == 200


def test_a_token_of_the_reset_second_lives_only_with_a_session_begun_since__rfc7519_2(
    make_user: Any,
) -> None:
    """`iat` has one-second precision: in the cutoff's own second, the token's `sid` decides."""
    from idp.identity.models import LoginSession
    from idp.models_base import utcnow
    from idp.oidc.tokens import access_token_revoked

    account = make_user(phone=PHONE)
    cutoff = utcnow()
    account.tokens_valid_after = cutoff
    thiefs = LoginSession(
        id="thief-session", account_id=account.id, created_at=cutoff - timedelta(minutes=5),
        expires_at=cutoff + timedelta(days=1), ended_at=cutoff,
    )  # fmt: skip
    owners = LoginSession(
        id="owner-session", account_id=account.id, created_at=cutoff,
        expires_at=cutoff + timedelta(days=1),
    )  # fmt: skip
    db.session.add_all([thiefs, owners])
    db.session.commit()
    second = int(cutoff.timestamp())

    def revoked(iat: int, sid: str | None) -> bool:
        claims = {"sub": account.id, "client_id": "rp", "jti": f"j{iat}{sid}", "iat": iat}
        if sid:
            claims["sid"] = sid
        return access_token_revoked(claims)

    assert revoked(second, "owner-session") is False
    assert revoked(second, "thief-session") is True
    assert revoked(second, None) is True
    assert revoked(second - 1, "owner-session") is True
    assert revoked(second + 1, None) is False


def test_disabling_an_account_revokes_its_refresh_tokens_too(
    app: Flask, user: Any, site: tuple[Any, str]
) -> None:
    """The same engine function serves the admin's "disable": re-enabling revives nothing."""
    from idp.admin.account_actions import disable_account, enable_account
    from idp.identity.audit import Actor

    browser = app.test_client()
    login(browser, PHONE)
    flow = CodeFlow(browser, site[0], site[1])
    tokens = flow.tokens(scope="openid offline_access")

    disable_account(user, Actor.admin("someone"))
    enable_account(user, Actor.admin("someone"))

    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert userinfo_status(browser, tokens["access_token"]) == 401
