"""Every schema change goes through Alembic: upgrade from empty, and the models match it."""

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from idp import MIGRATIONS_DIRECTORY, create_app
from idp.extensions import db
from tests.conftest import BACKENDS, POSTGRES_URL, base_config


@pytest.fixture(params=BACKENDS)
def empty_app(request: Any, tmp_path: Any) -> Any:
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}" if request.param == "sqlite" else POSTGRES_URL
    application = create_app(base_config(tmp_path, url))
    with application.app_context():
        if request.param == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
                connection.execute(sa.text("CREATE SCHEMA public"))
        yield application
        db.session.remove()
        db.engine.dispose()


# SQLite's reflection cannot read an expression index (the admin's name-prefix index); the
# PostgreSQL run compares it.
@pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning"
)
@pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index:UserWarning"
)
def test_upgrade_from_empty_matches_the_models(empty_app: Any) -> None:
    upgrade(directory=MIGRATIONS_DIRECTORY)
    upgrade(directory=MIGRATIONS_DIRECTORY)  # idempotent
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == [], "models changed without a migration: run `idp db migrate`"


def test_downgrade_to_base_and_up_again(empty_app: Any) -> None:
    upgrade(directory=MIGRATIONS_DIRECTORY)
    downgrade(directory=MIGRATIONS_DIRECTORY, revision="base")
    upgrade(directory=MIGRATIONS_DIRECTORY)
    assert "account" in sa.inspect(db.engine).get_table_names()


def test_codes_become_unlogged_and_logged_again(empty_app: Any) -> None:
    """`authorization_code_unlogged`: PostgreSQL's code table writes no WAL; its downgrade
    logs it again. SQLite: nothing to change, both ways."""
    def persistence() -> str | None:
        if db.engine.dialect.name != "postgresql":
            return None
        with db.engine.connect() as connection:
            return str(connection.exec_driver_sql(
                "SELECT relpersistence FROM pg_class WHERE relname = 'authorization_code'"
            ).scalar_one())

    upgrade(directory=MIGRATIONS_DIRECTORY)
    unlogged = persistence()
    downgrade(directory=MIGRATIONS_DIRECTORY, revision="e3b8f1a6c2d9")
    logged = persistence()
    upgrade(directory=MIGRATIONS_DIRECTORY)
    if db.engine.dialect.name == "postgresql":
        assert (unlogged, logged, persistence()) == ("u", "p", "u")
    assert "authorization_code" in sa.inspect(db.engine).get_table_names()


def test_issued_refresh_tokens_get_their_predecessor__rfc9700_4_14_2(empty_app: Any) -> None:
    """`refresh_token_predecessor`: a live token whose family keeps an answer (on the token it
    succeeded) names that token, so its rotation drops the answer as a new successor's does;
    a token rotated or revoked, or of a family keeping none, names none."""
    upgrade(directory=MIGRATIONS_DIRECTORY, revision="c31a7e9d2b58")
    insert_token = sa.text(
        "INSERT INTO refresh_token (token_digest, family, client_id, account_id, scope, "
        "auth_time, amr, issued_at, expires_at, rotated_at, revoked_at, "
        "successor_response_encrypted) VALUES (:digest, :family, 'c1', 'a1', 'openid', 0, "
        "'[]', '2026-12-06 09:00:00+00', '2027-01-01 00:00:00+00', :rotated, :revoked, :answer)")
    with db.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO account (id, status, is_admin, created_via, created_at, "
            "profile_updated_at) VALUES ('a1', 'active', false, 'website', "
            "'2026-12-01 00:00:00+00', '2026-12-01 00:00:00+00')"))
        connection.execute(sa.text(
            "INSERT INTO oauth_client (client_id, name, token_endpoint_auth_method, "
            "redirect_uris, post_logout_redirect_uris, grant_types, scope, "
            "id_token_signed_response_alg, is_first_party, require_mfa, created_at) VALUES "
            "('c1', 'c', 'client_secret_basic', '[]', '[]', '[]', 'openid', 'RS256', false, "
            "false, '2026-12-01 00:00:00+00')"))
        for digest, family, rotated, revoked, answer in (
            ("old", "f1", "2026-12-06 10:00:00+00", None, None),
            ("kept", "f1", "2026-12-06 11:00:00+00", None, "sealed-answer"),
            ("live", "f1", None, None, None),
            ("alone", "f2", None, None, None),
            ("gone", "f3", None, "2026-12-06 11:00:00+00", None),
            ("gone-kept", "f3", "2026-12-06 10:00:00+00", None, "sealed-answer"),
        ):
            connection.execute(insert_token, {"digest": digest, "family": family,
                                              "rotated": rotated, "revoked": revoked,
                                              "answer": answer})
    upgrade(directory=MIGRATIONS_DIRECTORY, revision="d7e2a9c4f1b3")
    with db.engine.connect() as connection:
        predecessors = dict(connection.execute(sa.text(
            "SELECT token_digest, predecessor_digest FROM refresh_token")).all())
    assert predecessors == {"old": None, "kept": None, "live": "kept", "alone": None,
                            "gone": None, "gone-kept": None}
