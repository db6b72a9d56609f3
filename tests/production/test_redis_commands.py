"""`idp.redis_commands`: a command on the thread's own Redis connection behaves as the client's
own call would — answers, error replies, a connection the server closed, threads, forks."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from redis.exceptions import ResponseError

from idp.extensions import redis_options
from idp.redis_commands import HeldConnections
from tests.production.conftest import REDIS_URL, redis_skip_reason

pytestmark = pytest.mark.skipif(bool(redis_skip_reason()), reason="Redis not reachable")


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(REDIS_URL, **redis_options())
    found.delete("held:a", "held:b")
    yield found
    found.delete("held:a", "held:b")
    found.close()


def test_answers_as_the_client_does(redis_client: redis.Redis) -> None:
    commands = HeldConnections(redis_client)
    redis_client.set("held:a", "1")
    assert commands.execute("MGET", "held:a", "held:b") == redis_client.mget("held:a", "held:b")
    assert commands.execute("INCRBY", "held:b", 2) == 2
    with pytest.raises(ResponseError):
        commands.execute("INCR", "held:a", "too", "many")


def test_commands_sent_together_answer_in_order_an_error_among_them(
    redis_client: redis.Redis,
) -> None:
    """One round trip: each answer in order; an error reply is given, not raised, and the
    answers after it are still read (the connection stays in step)."""
    commands = HeldConnections(redis_client)
    redis_client.set("held:a", "1")
    first, failed, last = commands.execute_many(
        ("INCR", "held:a"), ("INCR", "held:a", "too", "many"), ("MGET", "held:a", "held:b"))
    assert first == 2 and isinstance(failed, ResponseError) and last == [b"2", None]
    assert commands.execute("GET", "held:a") == b"2"


def test_one_connection_per_thread_kept_between_commands(redis_client: redis.Redis) -> None:
    commands = HeldConnections(redis_client)
    ids = [commands.execute("CLIENT", "ID") for _ in range(3)]
    assert len(set(ids)) == 1
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(commands.execute("CLIENT", "ID")))
    thread.start()
    thread.join()
    assert other[0] != ids[0]


def test_a_connection_the_server_closed_is_replaced_once(redis_client: redis.Redis) -> None:
    commands = HeldConnections(redis_client)
    held = commands.execute("CLIENT", "ID")
    redis_client.client_kill_filter(_id=held)
    redis_client.set("held:a", "after")
    assert commands.execute("GET", "held:a") == b"after"
    assert commands.execute("CLIENT", "ID") != held


def test_a_thread_gives_its_connection_back_when_it_ends(redis_client: redis.Redis) -> None:
    commands = HeldConnections(redis_client)
    pool = redis_client.connection_pool
    thread = threading.Thread(target=lambda: commands.execute("PING"))
    thread.start()
    thread.join()
    gc.collect()
    assert len(pool._in_use_connections) == 0
    assert len(pool._available_connections) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_opens_its_own(redis_client: redis.Redis) -> None:
    commands = HeldConnections(redis_client)
    parent = commands.execute("CLIENT", "ID")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its answer, through the pipe
        try:
            os.write(write, str(commands.execute("CLIENT", "ID")).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = int(os.read(read, 64) or b"0")
    os.waitpid(pid, 0)
    assert child not in (0, parent)
    assert commands.execute("CLIENT", "ID") == parent  # the parent's connection unharmed


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "IDP_REDIS_URL": REDIS_URL, "RATELIMIT_ENABLED": True,
            "IDP_TOKEN_RATE_LIMIT": "3/minute"}


def test_token_rate_limit_counts_on_after_redis_forgot_its_scripts(
    client: FlaskClient, app: Flask
) -> None:
    """RFC 6749 §5.2 shape aside, the count is Redis's: a `SCRIPT FLUSH` (a restart of Redis
    with its data kept) between requests costs the held connection a NOSCRIPT, answered by
    loading the script again — the limit holds, nothing fails."""
    key = f"rate-{os.getpid()}-{id(app)}"
    redis.Redis.from_url(REDIS_URL).flushdb()

    def ask() -> int:
        return client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                 "client_id": key}).status_code

    first = [ask(), ask()]
    redis.Redis.from_url(REDIS_URL).script_flush()
    rest = [ask(), ask()]
    assert first == [400, 400]  # an unknown client (RFC 6749 §5.2 invalid_client), counted
    assert rest == [400, 429]


def _named_refresh_token(account_id: str) -> str:
    """A refresh token's shape naming `account_id` under a mac no key made."""
    import base64
    import json

    grant = base64.urlsafe_b64encode(json.dumps(
        ["family", "client", account_id, "openid", 0, [], None]).encode()).decode().rstrip("=")
    return f"secret.{grant}.{'A' * 22}"


def test_token_rate_limit_counts_on_after_redis_forgot_its_scripts_read_along_the_versions(
    client: FlaskClient, app: Flask
) -> None:
    """The same when the request names an account (a refresh token's grant, a sealed code):
    the rate limit's script then travels with that account's cache versions, and a NOSCRIPT
    among the answers is answered the same way."""
    key = f"rate-{os.getpid()}-{id(app)}"
    redis.Redis.from_url(REDIS_URL).flushdb()

    def ask() -> int:
        return client.post("/oauth/token", data={
            "grant_type": "refresh_token", "client_id": key,
            "refresh_token": _named_refresh_token("some-account")}).status_code

    first = [ask(), ask()]
    redis.Redis.from_url(REDIS_URL).script_flush()
    rest = [ask(), ask()]
    assert first == [400, 400]  # an unknown client (RFC 6749 §5.2 invalid_client), counted
    assert rest == [400, 429]


def versions_read_alone(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The accounts whose cache versions are read in a round trip of their own from now on."""
    from idp.caching import RedisVersions

    alone: list[str] = []
    read = RedisVersions.read
    monkeypatch.setattr(RedisVersions, "read", lambda self, account_id, jti: (
        alone.append(account_id), read(self, account_id, jti))[1])
    return alone


def test_a_refresh_reads_its_cache_versions_in_the_rate_limits_round_trip__rfc6749_6(
    flow: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()
    tokens = flow.tokens(scope="openid profile offline_access")
    alone = versions_read_alone(monkeypatch)
    refreshed = flow.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.get_json()
    assert "id_token" in refreshed.get_json()
    assert alone == []  # the claims' versions came with the rate limit's answer


def test_introspection_reads_the_lock_out_count_in_the_versions_mget__rfc7662_2_1(
    flow: Any, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's failed authentications (`idp.oidc.client_auth_failures`) are read as one
    more key of the token's cache versions `MGET`: no round trip of their own, and the
    token's versions come with them; a client past its limit is refused all the same."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    tokens = flow.tokens(scope="openid profile")
    alone = versions_read_alone(monkeypatch)
    auth = (flow.client.client_id, flow.secret)
    answer = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=auth)
    assert answer.status_code == 200 and answer.get_json()["active"] is True
    assert alone == []  # the versions came with the lock-out count
    wrong = (flow.client.client_id, "wrong")
    for _ in range(10):  # IDP_CLIENT_AUTH_FAILURE_LIMIT's default: 10/minute
        client.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=wrong)
    locked = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=auth)
    assert locked.status_code == 429 and locked.get_json()["error"] == "temporarily_unavailable"
