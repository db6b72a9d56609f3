"""`idp backup` / `idp restore` of the embedded SQLite database: nothing is lost, keys included."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from idp import create_app
from idp.cli import backup, restore
from idp.extensions import db
from tests.conftest import POSTGRES_URL, CodeFlow, IsolatedClient, base_config, login


def sqlite_app(tmp_path: Path, name: str, **overrides: Any) -> Flask:
    directory = tmp_path / name
    config = {**base_config(directory, f"sqlite:///{directory / 'idp.sqlite3'}"), **overrides}
    app = create_app(config)
    app.test_client_class = IsolatedClient
    return app


def migrated(app: Flask) -> Flask:
    from flask_migrate import upgrade

    from idp import MIGRATIONS_DIRECTORY

    with app.app_context():
        upgrade(directory=MIGRATIONS_DIRECTORY)
    return app


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(path)) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            table: sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)  # noqa: S608
            for table in tables
        }


def invoke(app: Flask, command: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(command, list(args))


@pytest.fixture
def source(tmp_path: Path) -> Flask:
    """Users, clients, keys (two generations), a code-flow login with its refresh token."""
    from idp.accounts.seed import create_password_user
    from idp.oidc.clients import create_client
    from idp.oidc.context import keyring
    from idp.oidc.keys import rotate_keys

    app = migrated(sqlite_app(tmp_path, "source"))
    with app.app_context():
        create_password_user("+8613800138000", "correct horse battery", name="Alice")
        website, secret = create_client(
            name="Website", redirect_uris=["https://rp.example/callback"],
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            scope="openid profile offline_access",
        )  # fmt: skip
        keyring().current()
        rotate_keys(app.extensions["idp_secret_box"])
        browser = app.test_client()
        login(browser, "+8613800138000")
        tokens = CodeFlow(browser, website, secret).tokens(
            scope="openid profile offline_access", prompt="consent"
        )
        issued = browser.post(
            "/oauth/token", data={"grant_type": "client_credentials"},
            auth=(website.client_id, secret),
        ).get_json()  # fmt: skip
        app.config["test_data"] = {
            "client": (website.client_id, secret),
            "tokens": tokens,
            "access_token": issued["access_token"],
            "jwks": browser.get("/oauth/jwks").get_json(),
        }
        db.session.remove()
    return app


def database_file(app: Flask) -> Path:
    return Path(app.config["IDP_DATABASE_URL"].removeprefix("sqlite:///"))


def test_backup_and_restore_into_a_fresh_instance_lose_nothing(
    source: Flask, tmp_path: Path
) -> None:
    from idp.oidc.tokens import decode_access_token

    archive = tmp_path / "backups" / "idp.backup"
    done = invoke(source, backup, str(archive))
    assert done.exit_code == 0, done.output
    assert archive.stat().st_mode & 0o077 == 0

    fresh = sqlite_app(tmp_path, "fresh")  # same IDP_ENCRYPTION_KEY, new everything else
    restored = invoke(fresh, restore, str(archive))
    assert restored.exit_code == 0, restored.output

    before, after = dump(database_file(source)), dump(database_file(fresh))
    assert {t: len(r) for t, r in after.items()} == {t: len(r) for t, r in before.items()}
    assert after == before
    assert len(after["signing_key"]) >= 4 and after["account"] and after["refresh_token"]
    for row in after["signing_key"]:
        assert '"d"' not in str(row), "a private key in clear"

    data = source.config["test_data"]
    with fresh.app_context():
        browser = fresh.test_client()
        assert browser.get("/oauth/jwks").get_json() == data["jwks"]
        assert decode_access_token(data["access_token"]) is not None  # signed before the backup
        refreshed = browser.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": data["tokens"]["refresh_token"]},
            auth=data["client"],
        )
        assert refreshed.status_code == 200, refreshed.get_json()  # and the keys still sign
        assert decode_access_token(refreshed.get_json()["access_token"]) is not None


def test_restore_refuses_a_database_in_use_unless_forced(source: Flask, tmp_path: Path) -> None:
    archive = tmp_path / "idp.backup"
    assert invoke(source, backup, str(archive)).exit_code == 0
    refused = invoke(source, restore, str(archive))
    assert refused.exit_code != 0
    assert "--force" in refused.output
    assert invoke(source, restore, str(archive), "--force").exit_code == 0


def test_restore_into_an_empty_migrated_database(source: Flask, tmp_path: Path) -> None:
    archive = tmp_path / "idp.backup"
    assert invoke(source, backup, str(archive)).exit_code == 0
    empty = migrated(sqlite_app(tmp_path, "empty"))
    assert invoke(empty, restore, str(archive)).exit_code == 0


def test_restore_refuses_keys_it_could_not_decrypt(source: Flask, tmp_path: Path) -> None:
    archive = tmp_path / "idp.backup"
    assert invoke(source, backup, str(archive)).exit_code == 0
    other = sqlite_app(tmp_path, "other", IDP_ENCRYPTION_KEY="another-encryption-key")
    refused = invoke(other, restore, str(archive))
    assert refused.exit_code != 0
    assert "IDP_ENCRYPTION_KEY" in refused.output
    assert not database_file(other).exists()


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("not a database")
    result = invoke(sqlite_app(tmp_path, "target"), restore, str(junk))
    assert result.exit_code != 0


def test_a_backup_taken_while_writing_is_consistent(source: Flask, tmp_path: Path) -> None:
    path = database_file(source)
    stop = threading.Event()

    def write() -> None:
        with closing(sqlite3.connect(path, timeout=30)) as connection:
            while not stop.is_set():
                connection.execute(
                    "INSERT INTO login_event (account_id, channel, created_at)"
                    " VALUES ('x', 'website_password', '2026-01-01 00:00:00')"
                )
                connection.commit()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        archives = [tmp_path / f"b{i}.backup" for i in range(3)]
        for archive in archives:
            assert invoke(source, backup, str(archive)).exit_code == 0
    finally:
        stop.set()
        writer.join()
    for archive in archives:
        with closing(sqlite3.connect(archive)) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    app = create_app(base_config(tmp_path, POSTGRES_URL))
    result = invoke(app, backup, str(tmp_path / "x"))
    assert result.exit_code != 0
    assert "pg_dump" in result.output
