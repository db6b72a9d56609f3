"""The shared access-token cache in the database: encrypted, expiring, one refresher at a time."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from flask import Flask

from idp.crypto import SecretBox
from idp.extensions import db
from idp.wechat.client import WeChatClient
from idp.wechat.fake import FakeWeChatControl, FakeWeChatServer
from idp.wechat.models import WeChatAccessToken
from idp.wechat.store import DatabaseAccessTokenStore, shared_token_store

from .conftest import MINI_APPID, MINI_SECRET, WECHAT_TIMEOUT


def test_tokens_round_trip_encrypted_and_expire(app: Flask) -> None:
    store = shared_token_store(app)
    assert isinstance(store, DatabaseAccessTokenStore)
    assert store.get("wxapp") is None
    store.set("wxapp", "the-token", time.time() + 60)
    cached = store.get("wxapp")
    assert cached is not None and cached.token == "the-token"
    row = db.session.get(WeChatAccessToken, "wxapp")
    assert row is not None and "the-token" not in row.token_encrypted

    store.set("wxapp", "old-token", time.time() - 1)
    assert store.get("wxapp") is None
    store.set("wxapp", "the-token", time.time() + 60)
    store.delete("wxapp")
    assert store.get("wxapp") is None


def test_a_token_from_another_encryption_key_is_a_cache_miss(app: Flask) -> None:
    shared_token_store(app).set("wxapp", "the-token", time.time() + 60)
    other = DatabaseAccessTokenStore(db.engine, SecretBox("another-key"))
    assert other.get("wxapp") is None


def test_redis_is_used_when_configured(app: Flask) -> None:
    app.extensions["idp_redis"] = object()
    try:
        # Redis in front (possibly with the database as its fallback), not the database alone.
        assert not isinstance(shared_token_store(app), DatabaseAccessTokenStore)
    finally:
        app.extensions["idp_redis"] = None


def test_concurrent_callers_refresh_once(
    app: Flask, fake_wechat: FakeWeChatServer, control: FakeWeChatControl
) -> None:
    """Two processes' worth of callers (separate store objects, separate connections) with an
    empty cache: one calls stable_token, the other waits on the lock and uses its token."""
    control.arm_failure("/cgi-bin/stable_token", delay=0.5)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            with app.app_context():
                client = WeChatClient(
                    fake_wechat.base_url,
                    MINI_APPID,
                    MINI_SECRET,
                    shared_token_store(app),
                    timeout=WECHAT_TIMEOUT,
                )
                try:
                    tokens.append(client.access_token())
                finally:
                    client.close()
                    db.session.remove()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(tokens) == 3 and len(set(tokens)) == 1
    assert len(control.calls("/cgi-bin/stable_token")) == 1


def test_lock_is_reentrant_for_the_same_thread(app: Flask) -> None:
    store: Any = shared_token_store(app)
    with store.lock("wxapp"), store.lock("wxapp"):
        store.set("wxapp", "inside", time.time() + 60)
        assert store.get("wxapp").token == "inside"
    assert store.get("wxapp").token == "inside"


def test_the_access_token_is_encrypted_in_redis_too(app: Flask) -> None:
    import redis as redis_library

    from idp.wechat.store import EncryptedAccessTokenStore
    from idp.wechat.token_store import RedisAccessTokenStore
    from tests.redis_db import redis_url

    client = redis_library.Redis.from_url(redis_url(13), socket_connect_timeout=1)
    try:
        client.ping()
    except redis_library.RedisError:
        pytest.skip("Redis not reachable at 127.0.0.1:6379")
    prefix = f"idp:test:{uuid.uuid4().hex}:"
    store = EncryptedAccessTokenStore(
        RedisAccessTokenStore(client, prefix=prefix), app.extensions["idp_secret_box"]
    )
    try:
        store.set(MINI_APPID, "plain-access-token-value", time.time() + 600)
        stored = b"".join(client.get(key) or b"" for key in client.keys(prefix + "*"))
        assert stored and b"plain-access-token-value" not in stored
        cached = store.get(MINI_APPID)
        assert cached is not None and cached.token == "plain-access-token-value"
    finally:
        for key in client.keys(prefix + "*"):
            client.delete(key)
        client.close()
