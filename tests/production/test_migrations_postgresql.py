"""Every revision upgrades from the one before it on PostgreSQL, the production store: for each
revision in order, upgrade to it, step down once, and come back up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade

from idp import MIGRATIONS_DIRECTORY, create_app
from idp.extensions import db
from tests.conftest import POSTGRES_SKIP_REASON, POSTGRES_URL, base_config

pytestmark = pytest.mark.skipif(POSTGRES_SKIP_REASON is not None, reason=POSTGRES_SKIP_REASON or "")


@pytest.fixture
def empty_postgres(tmp_path: Any) -> Iterator[Flask]:
    application = create_app(base_config(tmp_path, POSTGRES_URL))
    with application.app_context():
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
        yield application
        db.session.remove()
        db.engine.dispose()


def revisions_oldest_first(app: Flask) -> list[Any]:
    config = app.extensions["migrate"].migrate.get_config(MIGRATIONS_DIRECTORY)
    return list(reversed(list(ScriptDirectory.from_config(config).walk_revisions())))


def current_revision() -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_each_revision_upgrades_from_the_previous_one(empty_postgres: Flask) -> None:
    revisions = revisions_oldest_first(empty_postgres)
    assert revisions, "no migrations found"
    for script in revisions:
        upgrade(directory=MIGRATIONS_DIRECTORY, revision=script.revision)
        assert current_revision() == script.revision
        downgrade(directory=MIGRATIONS_DIRECTORY, revision=script.down_revision or "base")
        assert current_revision() == script.down_revision
        upgrade(directory=MIGRATIONS_DIRECTORY, revision=script.revision)
        assert current_revision() == script.revision
    # Drift between the models and head is tests/test_migrations.py's business.
