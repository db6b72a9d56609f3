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
