"""The app access token: POST /cgi-bin/stable_token, cached and refreshed one caller at a time."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from idp.wechat.client import WeChatClient
from idp.wechat.errors import InvalidAccessToken
from idp.wechat.fake import FakeWeChatControl
from idp.wechat.token_store import MemoryAccessTokenStore, RedisAccessTokenStore

from .conftest import MINI_APPID

STABLE_TOKEN = "/cgi-bin/stable_token"
PHONE = "/wxa/business/getuserphonenumber"


def run_concurrently(count: int, action: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(count)
    results: list[object] = []

    def worker() -> None:
        barrier.wait()
        results.append(action())

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return results


def test_second_call_is_served_from_the_cache_without_http(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    assert client.access_token() == client.access_token()
    calls = control.calls(STABLE_TOKEN)
    assert len(calls) == 1
    assert calls[0]["body"]["secret"] == "REDACTED" and calls[0]["body"]["force_refresh"] is False


def test_cache_entry_ends_five_minutes_before_the_token_expires(make_client, control) -> None:
    store = MemoryAccessTokenStore()
    make_client(token_store=store).access_token()
    cached = store.get(MINI_APPID)
    assert cached is not None
    assert time.time() + 7200 - 300 - 5 < cached.expires_at <= time.time() + 7200 - 300


def test_expired_cache_entry_is_fetched_again(make_client, control) -> None:
    store = MemoryAccessTokenStore()
    client = make_client(token_store=store)
    store.set(MINI_APPID, "stale-token", time.time() - 1)
    assert client.access_token() != "stale-token"
    assert len(control.calls(STABLE_TOKEN)) == 1


def test_force_refresh_asks_wechat_for_a_new_token(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    first = client.access_token()
    second = client.access_token(force_refresh=True)
    assert first != second
    assert [c["body"]["force_refresh"] for c in control.calls(STABLE_TOKEN)] == [False, True]


def test_eight_concurrent_callers_cause_one_stable_token_call(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    control.arm_failure(STABLE_TOKEN, delay=0.2)  # keep the first fetch in flight
    tokens = run_concurrently(8, client.access_token)
    assert len(set(tokens)) == 1 and len(tokens) == 8
    assert len(control.calls(STABLE_TOKEN)) == 1


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_rejected_token_is_refreshed_once_and_the_call_retried_once(
    client: WeChatClient, control: FakeWeChatControl, errcode: int
) -> None:
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    control.arm_failure(PHONE, errcode=errcode)
    assert client.get_phone_number(code).phone_number_e164 == "+8613800138000"
    assert [c["body"]["force_refresh"] for c in control.calls(STABLE_TOKEN)] == [False, True]
    assert len(control.calls(PHONE)) == 2


def test_really_expired_token_42001_is_replaced_and_the_call_succeeds(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    client.access_token()
    control.advance_clock(7201)  # WeChat's clock moves on; our cache still trusts the token
    code = control.issue_phone_code(MINI_APPID, "13800138000")
    assert client.get_phone_number(code).phone_number_e164 == "+8613800138000"
    assert len(control.calls(STABLE_TOKEN)) == 2


def test_token_rejected_twice_raises_after_exactly_one_retry(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    control.arm_failure(PHONE, errcode=40001, times=2)
    with pytest.raises(InvalidAccessToken):
        client.get_phone_number(control.issue_phone_code(MINI_APPID, "13800138000"))
    assert len(control.calls(PHONE)) == 2
    assert len(control.calls(STABLE_TOKEN)) == 2


def test_concurrent_rejections_share_one_forced_refresh(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    client.access_token()
    control.advance_clock(7201)
    codes = iter([control.issue_phone_code(MINI_APPID, f"1380013800{i}") for i in range(8)])
    lock = threading.Lock()

    def bind_phone() -> str:
        with lock:
            code = next(codes)
        return client.get_phone_number(code).phone_number_e164

    assert len(set(run_concurrently(8, bind_phone))) == 8
    assert [c["body"]["force_refresh"] for c in control.calls(STABLE_TOKEN)] == [False, True]


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


def test_redis_store_keeps_the_token_with_a_ttl(redis_client: redis.Redis) -> None:
    store = RedisAccessTokenStore(redis_client, prefix="test:")
    store.set(MINI_APPID, "token-1", time.time() + 100)
    cached = store.get(MINI_APPID)
    assert cached is not None and cached.token == "token-1"
    assert 0 < redis_client.ttl(f"test:access_token:{MINI_APPID}") <= 100
    store.delete(MINI_APPID)
    assert store.get(MINI_APPID) is None


def test_redis_store_lets_one_of_eight_callers_refresh(
    make_client, control: FakeWeChatControl, redis_client: redis.Redis
) -> None:
    redis_client.flushdb()
    clients = [
        make_client(token_store=RedisAccessTokenStore(redis_client, prefix="test:"))
        for _ in range(8)
    ]  # eight "processes" sharing one Redis
    control.arm_failure(STABLE_TOKEN, delay=0.2)
    callers = iter(clients)
    lock = threading.Lock()

    def fetch() -> str:
        with lock:
            client = next(callers)
        return client.access_token()

    assert len(set(run_concurrently(8, fetch))) == 1
    assert len(control.calls(STABLE_TOKEN)) == 1
