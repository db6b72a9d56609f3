"""Backups of the embedded SQLite database, with SQLite's online backup API.

The copy is a consistent snapshot even while `idp serve` keeps writing: SQLite copies every page
under one read transaction. Secrets inside stay encrypted with `IDP_ENCRYPTION_KEY`, which is
deliberately not in the backup: keep it (or `instance/encryption_key`) somewhere else, and give
it to the instance you restore into. PostgreSQL is backed up with pg_dump (docs/DEPLOYMENT.md).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from idp.crypto import DecryptionError, SecretBox

SCHEMA_MARKER = "alembic_version"
# Tables whose rows do not make a database "in use".
BOOKKEEPING_TABLES = frozenset({SCHEMA_MARKER, "sqlite_sequence"})


class BackupError(RuntimeError):
    """The backup or restore cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Summary:
    path: Path
    rows_by_table: dict[str, int]

    @property
    def rows(self) -> int:
        return sum(self.rows_by_table.values())

    def __str__(self) -> str:
        return f"{len(self.rows_by_table)} tables, {self.rows} rows: {self.path}"


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"the database is {url.get_backend_name()}, not SQLite: back it up with pg_dump"
            " and restore it with pg_restore (docs/DEPLOYMENT.md)"
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def backup(database_url: str, destination: Path) -> Summary:
    """Copy the live database to `destination` (written to a temporary file, then renamed)."""
    source_path = sqlite_path(database_url)
    if not source_path.exists():
        raise BackupError(f"no database at {source_path}")
    destination = destination.resolve()
    if destination == source_path.resolve():
        raise BackupError("the backup would overwrite the database itself")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    with closing(_connect(source_path)) as source, closing(sqlite3.connect(partial)) as target:
        source.backup(target)  # all pages in one step: one consistent snapshot
        target.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        _check_integrity(target, partial)
        rows = row_counts(target)
    os.chmod(partial, 0o600)  # noqa: S103 - owner only: it holds (encrypted) secrets and PII
    partial.replace(destination)
    return Summary(destination, rows)


def restore(source: Path, database_url: str, box: SecretBox, *, force: bool = False) -> Summary:
    """Replace the configured database with the backup at `source`.

    Refuses a database that already holds data unless `force`, and a backup whose signing keys
    the configured `IDP_ENCRYPTION_KEY` cannot decrypt (restoring it would leave an IdP that
    cannot sign).
    """
    target_path = sqlite_path(database_url)
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    with closing(_connect(source, read_only=True)) as backup_db:
        _check_integrity(backup_db, source)
        if SCHEMA_MARKER not in _tables(backup_db):
            raise BackupError(f"{source} is not a backup of this IdP (no schema version)")
        _check_keys_decrypt(backup_db, box)
        if target_path.exists() and not force:
            with closing(_connect(target_path)) as current:
                in_use = {t: n for t, n in row_counts(current).items() if n}
            if in_use:
                raise BackupError(
                    f"{target_path} already holds data ({sum(in_use.values())} rows):"
                    " stop `idp serve` and pass --force to replace it"
                )
        target_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(_connect(target_path)) as target:
            backup_db.backup(target)
            _check_integrity(target, target_path)
            rows = row_counts(target)
    return Summary(target_path, rows)


def row_counts(connection: sqlite3.Connection) -> dict[str, int]:
    counts = {}
    for table in _tables(connection):
        if table not in BOOKKEEPING_TABLES:
            quoted = table.replace('"', '""')
            counts[table] = connection.execute(f'SELECT count(*) FROM "{quoted}"').fetchone()[0]  # noqa: S608
    return counts


def _tables(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name"
    ).fetchall()
    return [name for (name,) in rows]


def _connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    connection = sqlite3.connect(path, timeout=30)
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def _check_integrity(connection: sqlite3.Connection, path: Path) -> None:
    try:
        (result,) = connection.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} is not a readable SQLite database: {error}") from None
    if result != "ok":
        raise BackupError(f"{path} failed SQLite's integrity check: {result}")


def _check_keys_decrypt(connection: sqlite3.Connection, box: SecretBox) -> None:
    if "signing_key" not in _tables(connection):
        return
    rows = connection.execute(
        "SELECT kid, private_jwk_encrypted FROM signing_key WHERE retired_at IS NULL"
    ).fetchall()
    for kid, encrypted in rows:
        try:
            box.decrypt(encrypted, context=kid)
        except DecryptionError:
            raise BackupError(
                f"the configured IDP_ENCRYPTION_KEY cannot decrypt signing key {kid} of this"
                " backup: start the restore with the encryption key of the backed-up instance"
            ) from None
