"""The session-key store under concurrent first logins of one openid (CONTRACT §5): real threads on
SQLite and PostgreSQL, through the store and through the token endpoint with the fake WeChat."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from idp.extensions import db
from idp.identity.models import Account
from idp.wechat.fake import FakeWeChatControl
from idp.wechat.models import WeChatSessionKey
from idp.wechat_login.session_keys import remember_session_key, session_key_of
from tests.conftest import IsolatedClient
from tests.wechat_login.conftest import MINI_APPID, exchange

THREADS = 6
ROUNDS = 5


def race(app: Flask, count: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(i)` in `count` threads released together, each in its own app context (its own
    database session); results or exceptions, in order."""
    db.session.commit()
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                results[index] = work(index)
            except Exception as error:  # noqa: BLE001 - reported by the test
                results[index] = error
                db.session.rollback()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    db.session.expire_all()
    return results


def test_concurrent_first_writes_of_one_openid_all_succeed(app: Flask, wechat_apps: None) -> None:
    """The store alone, several rounds: every writer commits, one row remains, holding one of
    the written keys."""
    for round_number in range(ROUNDS):
        openid = f"o-race-{round_number}"
        keys = [f"session-key-{round_number}-{index}" for index in range(THREADS)]

        def write(index: int, openid: str = openid, keys: list[str] = keys) -> None:
            remember_session_key(MINI_APPID, openid, keys[index])
            db.session.commit()

        results = race(app, THREADS, write)
        assert [r for r in results if isinstance(r, Exception)] == []
        rows = db.session.scalar(
            select(func.count())
            .select_from(WeChatSessionKey)
            .where(WeChatSessionKey.openid == openid)
        )
        assert rows == 1
        assert session_key_of(MINI_APPID, openid) in keys


def test_a_later_login_replaces_the_key(app: Flask, wechat_apps: None) -> None:
    remember_session_key(MINI_APPID, "o-later", "first-key")
    db.session.commit()
    assert session_key_of(MINI_APPID, "o-later") == "first-key"
    remember_session_key(MINI_APPID, "o-later", "second-key")
    db.session.commit()
    assert session_key_of(MINI_APPID, "o-later") == "second-key"


def test_concurrent_first_mini_program_logins_of_one_openid__contract_5(
    app: Flask, control: FakeWeChatControl, mini_client: Any
) -> None:
    """Six `wx.login()` codes of one WeChat user exchanged at once: six tokens, no 500, one
    account, one session key (the one WeChat gave one of them)."""
    issued = [control.issue_js_code(MINI_APPID, user="racer") for _ in range(THREADS)]
    # The racers must not touch the test's ORM objects (their session is the test's).
    client = SimpleNamespace(client_id=mini_client.client_id)

    def login(index: int) -> tuple[int, Any]:
        browser = app.test_client()
        assert isinstance(browser, IsolatedClient)
        response = exchange(browser, client, issued[index].code)
        return response.status_code, response.get_json()

    results = race(app, THREADS, login)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert [status for status, _ in results] == [200] * THREADS, results
    assert db.session.scalar(select(func.count()).select_from(Account)) == 1
    openid = issued[0].openid
    assert {item.openid for item in issued} == {openid}
    assert session_key_of(MINI_APPID, openid) in {item.session_key for item in issued}
