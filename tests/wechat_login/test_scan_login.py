"""Scan with the mini-program to sign in on a computer, over HTTP against the fake WeChat: the code
(wxacode.getUnlimited), the ticket's life (waiting → scanned → confirmed / refused → used, 2 min),
its binding to the browser, the long-poll, and CONTRACT §8's `POST /wechat/scan/<ticket>`.
Tickets live in the database, or in Redis when IDP_REDIS_URL is set: both are run."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import unquote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.accounts import resolve_account, set_claim
from idp.identity.models import LoginSession
from idp.wechat.fake import FakeWeChatControl
from idp.wechat_login import scan
from idp.wechat_login.scan_account import masked_phone
from tests.conftest import CodeFlow, csrf_token
from tests.oidc.helpers import id_token_claims
from tests.redis_db import redis_url

from .conftest import MINI_APPID, bearer, bind_phone, mini_login

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71"
    " Safari/537.36"
)
REDIS_URL = redis_url(11)


def _redis_reason() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as error:  # noqa: BLE001
        return f"Redis not reachable at IDP_TEST_REDIS_URL ({type(error).__name__})"
    return None


@pytest.fixture(params=["database", "redis"])
def app_config(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> dict[str, Any]:
    """The wechat_login config, with tickets in the database or in Redis."""
    if request.param == "redis":
        reason = _redis_reason()
        if reason:
            pytest.skip(reason)
        app_config["IDP_REDIS_URL"] = REDIS_URL
    app_config["IDP_WECHAT_SCAN_LONG_POLL_SECONDS"] = 1.0
    return app_config


@pytest.fixture
def scanning(app: Flask, mini_client: Any, control: FakeWeChatControl) -> Any:
    return mini_client


def show_code(browser: FlaskClient, next_url: str | None = None) -> str:
    """The browser loads the login page's code; returns the scene WeChat drew into it."""
    response = browser.get(
        "/login/scan/code.png", query_string={"next": next_url} if next_url else None,
        headers={"User-Agent": DESKTOP_UA},
    )
    assert response.status_code == 200, response.status_code
    assert response.data.startswith(PNG_SIGNATURE)
    with browser.session_transaction() as session:
        return str(session[scan.SESSION_KEY]["ticket"])


def poll(browser: FlaskClient, seen: str = "") -> Any:
    return browser.get("/login/scan/status", query_string={"seen": seen})


def finish(browser: FlaskClient) -> Any:
    page = browser.get("/login").get_data(as_text=True)
    return browser.post("/login/scan/finish", data={"csrf_token": csrf_token(page)})


def cancel(browser: FlaskClient) -> Any:
    page = browser.get("/login").get_data(as_text=True)
    return browser.post("/login/scan/cancel", data={"csrf_token": csrf_token(page)})


def signed_in(browser: FlaskClient) -> LoginSession | None:
    with browser.session_transaction() as session:
        sid = session.get("idp_sid")
    row = db.session.get(LoginSession, sid) if sid else None
    return row if row is not None and row.ended_at is None else None


def test_login_page_shows_the_scan_box_outside_wechat_only(
    client: FlaskClient, scanning: Any
) -> None:
    page = client.get("/login?next=/account").get_data(as_text=True)
    assert 'id="wechat-scan"' in page and "/login/scan/code.png?next=/account" in page
    inside = client.get("/login", headers={"User-Agent": "Mozilla/5.0 MicroMessenger/8.0.47"})
    assert 'id="wechat-scan"' not in inside.get_data(as_text=True)


def test_no_scan_box_without_a_mini_program(client: FlaskClient) -> None:
    assert 'id="wechat-scan"' not in client.get("/login").get_data(as_text=True)
    assert client.get("/login/scan/code.png").status_code == 404


def test_code_is_drawn_by_getwxacodeunlimit_with_the_ticket_as_scene__wxacode_getunlimited(
    client: FlaskClient, scanning: Any, control: FakeWeChatControl
) -> None:
    scene = show_code(client)
    (drawn,) = control.wxacodes()
    assert drawn["scene"] == scene and len(scene) <= 32
    assert drawn["appid"] == MINI_APPID
    assert (drawn["page"], drawn["check_path"], drawn["env_version"]) == (
        "pages/scan/scan", True, "release")
    # (With Redis, a token cached by an earlier test is refused first: 40001, refresh, retry.)
    call = control.calls("/wxa/getwxacodeunlimit")[-1]
    assert call["method"] == "POST" and call["query"]["access_token"]
    assert poll(client).get_json()["status"] == "waiting"
    # Every code is a new ticket: the old one is no longer this browser's.
    assert show_code(client) != scene


def test_confirm_signs_the_browser_in_and_the_oauth_flow_continues__contract_8(
    client: FlaskClient, scanning: Any, control: FakeWeChatControl, website: tuple[Any, str]
) -> None:
    tokens = mini_login(client.application.test_client(), control, scanning, "alice")
    flow = CodeFlow(client, website[0], website[1])
    waiting = flow.authorize(consent=None)
    assert waiting.status_code == 302 and "/login?next=" in waiting.headers["Location"]
    next_url = unquote(waiting.headers["Location"].split("next=", 1)[1])
    ticket = show_code(client, next_url)

    info = client.get(f"/wechat/scan/{ticket}", headers=bearer(tokens["access_token"]))
    assert info.status_code == 200, info.get_json()
    shown = info.get_json()
    assert shown["status"] == "scanned"
    assert shown["site"] == "Website (127.0.0.1:5000)"
    assert shown["browser"] == "Chrome 120 on Linux"
    assert shown["network"] == "127.0.0.0/24"
    assert 0 < shown["expires_in"] <= 120
    assert poll(client, "waiting").get_json()["status"] == "scanned"

    answer = client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"},
                         headers=bearer(tokens["access_token"]))
    assert (answer.status_code, answer.get_json()) == (200, {"status": "confirmed"})
    again = client.post(f"/wechat/scan/{ticket}", json={"decision": "refuse"},
                        headers=bearer(tokens["access_token"]))
    assert again.status_code == 409 and again.get_json()["error"] == "already_answered"
    assert poll(client, "scanned").get_json()["status"] == "confirmed"

    done = finish(client)
    assert done.status_code == 302 and done.headers["Location"].startswith("/oauth/authorize?")
    session = signed_in(client)
    assert session is not None
    assert (session.amr, session.channel) == ("wechat_scan", "website_scan")
    code = flow.code(consent="allow")
    id_token = flow.exchange(code).get_json()["id_token"]
    claims = id_token_claims(client, id_token)  # verified against the JWKS
    assert claims["amr"] == ["wechat_scan"]
    mini_claims = id_token_claims(client, tokens["id_token"])
    assert claims["sub"] == mini_claims["sub"]  # the mini-program's user, now on the computer

    # A ticket signs in once.
    assert finish(client).status_code == 400


def test_refusal_is_seen_by_the_browser_and_signs_nobody_in(
    client: FlaskClient, scanning: Any, control: FakeWeChatControl
) -> None:
    tokens = mini_login(client.application.test_client(), control, scanning, "alice")
    ticket = show_code(client)
    answer = client.post(f"/wechat/scan/{ticket}", json={"decision": "refuse"},
                         headers=bearer(tokens["access_token"]))
    assert (answer.status_code, answer.get_json()) == (200, {"status": "refused"})
    assert poll(client, "waiting").get_json()["status"] == "refused"
    assert finish(client).status_code == 400 and signed_in(client) is None


def test_a_ticket_is_bound_to_the_browser_that_showed_it(
    client: FlaskClient, scanning: Any, control: FakeWeChatControl
) -> None:
    tokens = mini_login(client.application.test_client(), control, scanning, "alice")
    ticket = show_code(client)
    client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"},
                headers=bearer(tokens["access_token"]))
    attacker = client.application.test_client()
    show_code(attacker)  # a session of its own, with its own ticket
    with attacker.session_transaction() as session:
        session[scan.SESSION_KEY] = {**session[scan.SESSION_KEY], "ticket": ticket}
    assert poll(attacker).status_code == 404
    assert finish(attacker).status_code == 400 and signed_in(attacker) is None
    assert finish(client).status_code == 302  # the rightful browser still can


def test_unknown_and_expired_tickets_are_404__contract_8(
    client: FlaskClient, scanning: Any, control: FakeWeChatControl, monkeypatch: Any
) -> None:
    tokens = mini_login(client.application.test_client(), control, scanning, "alice")
    headers = bearer(tokens["access_token"])
    unknown = client.post("/wechat/scan/nosuchticket", json={"decision": "confirm"},
                          headers=headers)
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "not_found"
    assert client.get("/wechat/scan/" + "x" * 300, headers=headers).status_code == 404
    monkeypatch.setattr(scan, "TICKET_TTL", 0.2)
    ticket = show_code(client)
    time.sleep(0.3)
    assert client.get(f"/wechat/scan/{ticket}", headers=headers).status_code == 404
    late = client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"}, headers=headers)
    assert late.status_code == 404
    assert poll(client, "waiting").get_json()["status"] == "expired"


def test_answers_need_a_mini_program_token_and_a_valid_decision(
    client: FlaskClient, scanning: Any, control: FakeWeChatControl, flow: CodeFlow
) -> None:
    ticket = show_code(client)
    assert client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"}).status_code == 401
    website_token = flow.tokens()["access_token"]
    not_mini = client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"},
                           headers=bearer(website_token))
    assert not_mini.status_code == 403
    tokens = mini_login(client.application.test_client(), control, scanning, "alice")
    for body in ({"decision": "maybe"}, {"decision": ["confirm"]}, [], "confirm"):
        bad = client.post(f"/wechat/scan/{ticket}", json=body,
                          headers=bearer(tokens["access_token"]))
        assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_request"
    assert poll(client).get_json()["status"] == "waiting"


def test_one_open_poll_per_browser_and_it_is_bounded(
    app: Flask, client: FlaskClient, scanning: Any
) -> None:
    show_code(client)
    with client.session_transaction() as session:
        copied = dict(session)
    twin = client.application.test_client()
    with twin.session_transaction() as session:
        session.update(copied)
    results: list[tuple[int, float]] = []

    def long_poll() -> None:
        started = time.monotonic()
        with app.app_context():
            response = poll(client, "waiting")
        results.append((response.status_code, time.monotonic() - started))

    waiter = threading.Thread(target=long_poll)
    waiter.start()
    time.sleep(0.3)
    second = poll(twin, "waiting")
    waiter.join(10)
    assert second.status_code == 429 and second.headers["Retry-After"] == "2"
    # The first one waited its bounded time (1 s in tests), then answered "still waiting".
    assert results and results[0][0] == 200 and 0.9 <= results[0][1] < 5


def test_a_fully_busy_process_answers_at_once_instead_of_holding_a_thread(
    app: Flask, client: FlaskClient, scanning: Any
) -> None:
    app.config["IDP_WECHAT_SCAN_LONG_POLLS"] = 0
    app.extensions.pop("idp_wechat_scan_slots", None)
    show_code(client)
    started = time.monotonic()
    answer = poll(client, "waiting").get_json()
    assert time.monotonic() - started < 0.5
    assert answer["status"] == "waiting" and answer["retry_after"] == 2


def test_wechat_refusing_the_code_is_not_a_500(
    client: FlaskClient, scanning: Any, control: FakeWeChatControl
) -> None:
    control.arm_failure("/wxa/getwxacodeunlimit", errcode=41030)
    assert client.get("/login/scan/code.png").status_code == 503
    control.arm_failure("/wxa/getwxacodeunlimit", status=502)
    assert client.get("/login/scan/code.png").status_code == 503



def test_redis_down_fails_closed_with_503(
    app: Flask, client: FlaskClient, scanning: Any, control: FakeWeChatControl
) -> None:
    import socket

    import redis

    from idp.wechat_login.scan_tickets import RedisScanTicketStore

    tokens = mini_login(client.application.test_client(), control, scanning, "alice")
    ticket = show_code(client)
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from idp.extensions import redis_options

    gone = redis.Redis(host="127.0.0.1", port=port, **redis_options())
    app.extensions["idp_wechat_scan_store"] = RedisScanTicketStore(gone)
    assert client.get("/login/scan/code.png").status_code == 503
    status = poll(client, "waiting")
    assert status.status_code == 503 and status.headers["Retry-After"] == "5"
    answer = client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"},
                         headers=bearer(tokens["access_token"]))
    assert answer.status_code == 503
    assert answer.get_json()["error"] == "temporarily_unavailable"
    assert finish(client).status_code == 503 and signed_in(client) is None


# --- login CSRF by QR (issue 23 item 4, RFC 6749 §10.12) -----------------------------------------


def scanner_with_a_profile(browser: FlaskClient, control: FakeWeChatControl, client: Any) -> str:
    """A mini-program user with a verified phone (getPhoneNumber), a nickname and an avatar;
    returns the access token of the account after binding."""
    tokens = mini_login(browser, control, client, "mallory")
    bound = bind_phone(browser, tokens["access_token"],
                       {"code": control.issue_phone_code(MINI_APPID, "13800136183")})
    assert bound.status_code == 200, bound.get_json()
    account = resolve_account(bound.get_json()["sub"])
    assert account is not None
    set_claim(account, "nickname", "Mallory", "user")
    set_claim(account, "picture", "https://thirdwx.qlogo.cn/mmopen/mallory/132", "user")
    db.session.commit()
    return str(bound.get_json()["access_token"])


def test_the_browser_is_shown_who_confirmed_and_waits_for_the_person__rfc6749_10_12(
    client: FlaskClient, scanning: Any, control: FakeWeChatControl
) -> None:
    token = scanner_with_a_profile(client.application.test_client(), control, scanning)
    ticket = show_code(client, "/account")
    answer = client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"},
                         headers=bearer(token))
    assert answer.status_code == 200
    seen = poll(client, "scanned").get_json()
    assert seen["status"] == "confirmed"
    assert seen["account"] == {
        "phone": "138****6183",
        "nickname": "Mallory",
        "picture": "https://thirdwx.qlogo.cn/mmopen/mallory/132",
    }
    # Confirming on a phone signs nobody in: the person at the browser has to continue.
    assert signed_in(client) is None
    assert poll(client, "waiting").get_json()["status"] == "confirmed"
    done = finish(client)
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    assert signed_in(client) is not None


def test_an_account_without_phone_or_profile_is_shown_as_such__rfc6749_10_12(
    client: FlaskClient, scanning: Any, control: FakeWeChatControl
) -> None:
    tokens = mini_login(client.application.test_client(), control, scanning, "alice")
    ticket = show_code(client)
    client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"},
                headers=bearer(tokens["access_token"]))
    seen = poll(client, "waiting").get_json()
    assert seen["status"] == "confirmed"
    assert seen["account"] == {"phone": None, "nickname": None, "picture": None}


def test_cancel_ends_a_confirmed_ticket_and_signs_nobody_in__rfc6749_10_12(
    client: FlaskClient, scanning: Any, control: FakeWeChatControl
) -> None:
    token = scanner_with_a_profile(client.application.test_client(), control, scanning)
    ticket = show_code(client, "/account")
    client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"}, headers=bearer(token))
    assert client.post("/login/scan/cancel").status_code == 400  # no CSRF token: nothing moves
    assert poll(client, "waiting").get_json()["status"] == "confirmed"

    cancelled = cancel(client)
    assert cancelled.status_code == 302
    assert cancelled.headers["Location"] == "/login?next=/account"
    page = client.get(cancelled.headers["Location"]).get_data(as_text=True)
    assert "Sign-in cancelled. Nothing was changed." in page
    assert finish(client).status_code == 400 and signed_in(client) is None
    # The ticket is over for everyone: the mini-program is told it was answered.
    late = client.get(f"/wechat/scan/{ticket}", headers=bearer(token))
    assert late.status_code == 409 and late.get_json()["status"] == "cancelled"
    assert scan.store().get(ticket).status == "cancelled"  # type: ignore[union-attr]


def test_only_the_mini_program_the_code_was_made_for_answers_it(
    client: FlaskClient, scanning: Any, other_mini_client: Any, control: FakeWeChatControl
) -> None:
    other = mini_login(client.application.test_client(), control, other_mini_client, "bob")
    ticket = show_code(client)
    assert control.wxacodes()[-1]["appid"] == MINI_APPID
    for response in (
        client.get(f"/wechat/scan/{ticket}", headers=bearer(other["access_token"])),
        client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"},
                    headers=bearer(other["access_token"])),
    ):
        assert response.status_code == 403
        assert response.get_json()["error"] == "unauthorized_client"
    assert poll(client).get_json()["status"] == "waiting"  # not even "scanned"
    assert finish(client).status_code == 400 and signed_in(client) is None
    mine = mini_login(client.application.test_client(), control, scanning, "alice")
    answer = client.post(f"/wechat/scan/{ticket}", json={"decision": "confirm"},
                         headers=bearer(mine["access_token"]))
    assert answer.status_code == 200


@pytest.mark.parametrize(("e164", "shown"), [
    ("+8613800136183", "138****6183"),
    ("+85291234567", "+852****4567"),
    ("+12025550123", "+120****0123"),
])
def test_the_phone_is_masked_as_chinese_apps_do(e164: str, shown: str) -> None:
    assert masked_phone(e164) == shown
