"""The per-process client cache of the token endpoint and userinfo (idp/oidc/server.py): a change
made here is seen at once; one made by another process within IDP_KEY_CACHE_SECONDS."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from idp.crypto import digest
from idp.extensions import db
from idp.oidc.client_cache import ClientCache, ClientSnapshot, cached_client
from idp.oidc.clients import rotate_client_secret
from idp.oidc.models import Client

TOKEN = {"grant_type": "client_credentials"}


@pytest.fixture
def cache(app: Flask, monkeypatch: Any) -> ClientCache:
    """A 5-second cache on a clock the test moves."""
    now = [1000.0]
    monkeypatch.setattr("idp.oidc.client_cache.time.monotonic", lambda: now[0])
    cache: ClientCache = app.extensions["idp_client_cache"]
    monkeypatch.setattr(cache, "ttl", 5.0)
    cache.advance = lambda seconds: now.__setitem__(0, now[0] + seconds)  # type: ignore[attr-defined]
    return cache


def another_process_sets_secret(client_id: str, secret: str) -> None:
    """A write that does not go through this process's ORM session (as from another worker)."""
    with db.engine.begin() as connection:
        connection.execute(
            update(Client).where(Client.client_id == client_id)
            .values(client_secret_digest=digest(secret))
        )


def test_a_snapshot_answers_like_the_row(app: Flask, make_client: Any) -> None:
    row, secret = make_client(grant_types=["client_credentials"], scope="openid profile")
    snapshot = cached_client(row.client_id)
    assert isinstance(snapshot, ClientSnapshot)
    assert snapshot.check_client_secret(secret) and not snapshot.check_client_secret("wrong")
    assert snapshot.check_grant_type("client_credentials") is row.check_grant_type(
        "client_credentials"
    )
    assert snapshot.get_allowed_scope("openid email") == "openid"
    assert snapshot.is_public is False and snapshot.client_metadata == row.client_metadata
    with pytest.raises(AttributeError):
        snapshot.scope = "openid email"  # type: ignore[misc]


def test_unknown_and_malformed_client_ids(app: Flask, cache: ClientCache) -> None:
    assert cached_client("no-such-client") is None
    assert cached_client("x" * 65) is None
    assert cached_client(None) is None  # type: ignore[arg-type]
    assert "no-such-client" not in cache._entries  # noqa: SLF001 - nothing cached for a miss


def test_a_secret_rotated_in_this_process_applies_at_once(
    app: Flask, make_client: Any, cache: ClientCache
) -> None:
    row, old = make_client(grant_types=["client_credentials"], scope="openid")
    rp = app.test_client()
    assert rp.post("/oauth/token", data=TOKEN, auth=(row.client_id, old)).status_code == 200
    new = rotate_client_secret(db.session.get(Client, row.client_id))
    assert rp.post("/oauth/token", data=TOKEN, auth=(row.client_id, old)).status_code == 401
    assert rp.post("/oauth/token", data=TOKEN, auth=(row.client_id, new)).status_code == 200


def test_a_secret_rotated_by_another_process_applies_within_the_window(
    app: Flask, make_client: Any, cache: ClientCache
) -> None:
    row, old = make_client(grant_types=["client_credentials"], scope="openid")
    rp = app.test_client()
    assert rp.post("/oauth/token", data=TOKEN, auth=(row.client_id, old)).status_code == 200
    another_process_sets_secret(row.client_id, "rotated-elsewhere")
    cache.advance(4.9)  # type: ignore[attr-defined]
    # Within the window this process may still accept the old secret (documented) ...
    assert rp.post("/oauth/token", data=TOKEN, auth=(row.client_id, old)).status_code == 200
    cache.advance(0.2)  # type: ignore[attr-defined]
    # ... and no longer once it has passed.
    assert rp.post("/oauth/token", data=TOKEN, auth=(row.client_id, old)).status_code == 401
    assert rp.post(
        "/oauth/token", data=TOKEN, auth=(row.client_id, "rotated-elsewhere")
    ).status_code == 200


def test_a_deleted_client_is_forgotten_at_once(
    app: Flask, make_client: Any, cache: ClientCache
) -> None:
    row, secret = make_client(grant_types=["client_credentials"], scope="openid")
    assert cached_client(row.client_id) is not None
    db.session.delete(db.session.get(Client, row.client_id))
    db.session.commit()
    assert cached_client(row.client_id) is None
