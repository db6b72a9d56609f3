"""`idp tokens revoke-all [--before TIME]`: after a restore, the database has forgotten what was
revoked after its dump. Revoking everything issued before the restore kills refresh tokens
(RFC 7009 §2.1: the refresh grant answers `invalid_grant`) and access tokens (userinfo 401,
RFC 6750 §3.1; introspection `active: false`, RFC 7662 §2.2) — user and client tokens alike —
and leaves tokens issued after the cut-off alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from idp.cli import tokens
from idp.extensions import db
from idp.oidc.models import Client, RefreshToken, TokenCutoff, token_digest
from idp.operations.backup import backup, restore
from tests.conftest import CodeFlow


def revoke_all(app: Flask, *args: str) -> Any:
    result = app.test_cli_runner().invoke(tokens, ["revoke-all", *args])
    return result


def userinfo(browser: FlaskClient, access_token: str) -> int:
    return browser.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    ).status_code


def active(browser: FlaskClient, holder: tuple[Any, str], token: str) -> bool:
    """Introspection by the client the token was issued to (RFC 7662 §2.1)."""
    response = browser.post(
        "/oauth/introspect", data={"token": token}, auth=(holder[0].client_id, holder[1])
    )
    assert response.status_code == 200, response.get_json()
    return bool(response.get_json()["active"])


def client_credentials_token(browser: FlaskClient, service: tuple[Any, str]) -> str:
    response = browser.post(
        "/oauth/token", data={"grant_type": "client_credentials"},
        auth=(service[0].client_id, service[1]),
    )
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["access_token"])


@pytest.fixture
def service(make_client: Any) -> tuple[Any, str]:
    return make_client(name="Service", grant_types=["client_credentials"], scope="openid")


def test_revoke_all_kills_every_token_issued_before__rfc7009_2_1(
    app: Flask, flow: CodeFlow, website: Any, service: tuple[Any, str]
) -> None:
    user_tokens = flow.tokens()
    service_token = client_credentials_token(flow.browser, service)
    assert userinfo(flow.browser, user_tokens["access_token"]) == 200
    assert active(flow.browser, service, service_token)

    result = revoke_all(app)

    assert result.exit_code == 0, result.output
    assert "revoked 1 refresh tokens" in result.output
    assert userinfo(flow.browser, user_tokens["access_token"]) == 401
    assert not active(flow.browser, website, user_tokens["access_token"])
    assert not active(flow.browser, service, service_token)
    refreshed = flow.refresh(user_tokens["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"

    # Tokens issued after the cut-off work. `iat` is whole seconds, the cut-off's own second
    # counting as before it: the cut-off moves a second back (as if a second had passed).
    for cutoff in db.session.scalars(sa.select(TokenCutoff)):
        cutoff.not_before = cutoff.not_before - timedelta(seconds=1)
    db.session.commit()
    fresh = flow.tokens()
    assert userinfo(flow.browser, fresh["access_token"]) == 200
    assert flow.refresh(fresh["refresh_token"]).status_code == 200
    token = client_credentials_token(flow.browser, service)
    assert active(flow.browser, service, token)


def test_revoke_all_before_a_time_spares_later_tokens(
    app: Flask, flow: CodeFlow, website: Any
) -> None:
    old = flow.tokens()
    recent = flow.tokens()
    row = db.session.get(RefreshToken, token_digest(old["refresh_token"]))
    row.issued_at = datetime.now(UTC) - timedelta(hours=3)
    db.session.commit()

    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = revoke_all(app, "--before", two_hours_ago)

    assert result.exit_code == 0, result.output
    assert "revoked 1 refresh tokens" in result.output
    assert flow.refresh(old["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert flow.refresh(recent["refresh_token"]).status_code == 200
    assert userinfo(flow.browser, recent["access_token"]) == 200
    (cutoff,) = db.session.scalars(sa.select(TokenCutoff)).all()
    assert cutoff.not_before.strftime("%Y-%m-%dT%H:%M:%SZ") == two_hours_ago
    assert cutoff.actor == "cli"


@pytest.mark.parametrize("before", ["yesterday", "2026-13-01", ""])
def test_revoke_all_refuses_a_time_it_cannot_read(app: Flask, before: str) -> None:
    result = revoke_all(app, "--before", before) if before else revoke_all(app, "--before")
    assert result.exit_code != 0
    assert db.session.scalars(sa.select(TokenCutoff)).all() == []


def test_after_a_restore_revoked_tokens_come_back_until_revoke_all(
    app: Flask, flow: CodeFlow, website: Any, backend: str, tmp_path: Path
) -> None:
    """The drill of docs/DEPLOYMENT.md, "After a restore", with the SQLite backup tools."""
    if backend != "sqlite":
        pytest.skip("idp backup/restore are the SQLite tools; PostgreSQL uses pg_dump")
    stolen = flow.tokens()
    dump = tmp_path / "before-the-theft.sqlite3"
    # The schema marker `idp db upgrade` leaves, which `idp restore` looks for.
    db.session.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
    db.session.commit()
    backup(app.config["SQLALCHEMY_DATABASE_URI"], dump)
    revoked = flow.browser.post(
        "/oauth/revoke", data={"token": stolen["refresh_token"]},
        auth=(website[0].client_id, website[1]),
    )
    assert revoked.status_code == 200
    assert flow.refresh(stolen["refresh_token"]).status_code == 400

    client_id = website[0].client_id
    db.session.remove()
    db.engine.dispose()
    restore(dump, app.config["SQLALCHEMY_DATABASE_URI"], app.extensions["idp_secret_box"],
            force=True)
    db.engine.dispose()
    flow.client = db.session.get(Client, client_id)  # re-read from the restored file
    resurrected = flow.refresh(stolen["refresh_token"])
    assert resurrected.status_code == 200  # the problem: the restore forgot the revocation

    assert revoke_all(app).exit_code == 0
    again = flow.refresh(resurrected.get_json()["refresh_token"])
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert userinfo(flow.browser, resurrected.get_json()["access_token"]) == 401
