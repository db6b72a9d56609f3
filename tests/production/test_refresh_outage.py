"""PostgreSQL stops in the middle of a refresh (issue 17 item 1): the client must not be logged
out. A private cluster (see test_database_restart.py) is stopped while the refresh builds its ID
token — after the token was claimed, before anything is committed — and started again; the
client's retry with the same refresh token must succeed, and its family must stay alive.

Before the fix the rotation was committed before the ID token was built: the outage gave a 500
after the commit, and the retry counted as reuse and revoked the family (a false theft signal).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from idp import create_app
from idp.extensions import db
from idp.oidc import grants
from idp.oidc.models import RefreshToken, token_digest
from tests.conftest import PASSWORD, base_config
from tests.production.conftest import (
    PHONE,
    REDIRECT_URI,
    Cluster,
    authorization_code,
    browser_login,
    free_port,
    redeem,
    refresh,
)
from tests.production.test_database_restart import PrivatePostgres, private_postgres  # noqa: F401


@dataclass
class Served:
    app: Flask
    base: str
    client: Cluster  # only its client_id / client_secret are used by the helpers


@pytest.fixture
def served(private_postgres: PrivatePostgres, tmp_path: Path) -> Iterator[Served]:  # noqa: F811
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app({**base_config(tmp_path, private_postgres.url("idp")), "IDP_ISSUER": base})
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="idp-refresh-outage", daemon=True)
    with app.app_context():
        try:
            db.create_all()
            from idp.accounts.seed import create_password_user
            from idp.oidc.clients import create_client

            create_password_user(PHONE, PASSWORD)
            client, secret = create_client(
                name="Outage", redirect_uris=[REDIRECT_URI], first_party=True,
                scope="openid profile offline_access",
            )  # fmt: skip
            assert secret is not None
            relying_party = Cluster(base, [base], {}, client.client_id, secret)
            db.session.commit()
            db.session.remove()
            thread.start()
            yield Served(app, base, relying_party)
        finally:
            if thread.is_alive():
                server.shutdown()
                thread.join(timeout=10)
            server.server_close()
            db.session.remove()
            db.engine.dispose()


def family_rows(app: Flask, refresh_token: str) -> list[RefreshToken]:
    with app.app_context():
        row = db.session.get(RefreshToken, token_digest(refresh_token))
        assert row is not None
        rows = list(
            db.session.scalars(select(RefreshToken).where(RefreshToken.family == row.family))
        )
        db.session.remove()
        return rows


def test_postgresql_stopping_mid_refresh_does_not_log_the_user_out__rfc9700_4_14_2(
    private_postgres: PrivatePostgres,  # noqa: F811
    served: Served,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with requests.Session() as browser:
        browser_login(browser, served.base)
        code, verifier = authorization_code(browser, served.base, served.client)
    tokens = redeem(served.base, served.client, code, verifier).json()
    assert tokens["refresh_token"]

    original = grants.id_token_claims
    stopped = threading.Event()

    def stop_database_then_read(*args: Any, **kwargs: Any) -> Any:
        # The ID token of the refresh is built after the claim of the old token, still
        # uncommitted: PostgreSQL goes away just before.
        if not stopped.is_set():
            stopped.set()
            private_postgres.ctl("stop", "-m", "fast")
        return original(*args, **kwargs)

    monkeypatch.setattr(grants, "id_token_claims", stop_database_then_read)
    during = refresh(served.base, served.client, tokens["refresh_token"])
    assert stopped.is_set()
    assert during.status_code >= 500, during.text[:500]
    assert during.headers["Content-Type"].startswith("application/json")
    assert "refresh_token" not in during.json()

    private_postgres.start()
    retry = refresh(served.base, served.client, tokens["refresh_token"])
    assert retry.status_code == 200, retry.text[:500]
    assert retry.json()["id_token"] and retry.json()["refresh_token"] != tokens["refresh_token"]
    assert [row.revoked_at for row in family_rows(served.app, tokens["refresh_token"])] == [
        None,
        None,
    ]
    onwards = refresh(served.base, served.client, retry.json()["refresh_token"])
    assert onwards.status_code == 200, onwards.text[:500]
