"""Issue 27 item 4: every audit record is sealed in a per-day HMAC chain whose key is not in the
database; `idp audit verify` names a record altered, deleted or reordered by SQL; two writers
at once do not fork the chain; export as RFC 5424 to a file or a syslog receiver."""

from __future__ import annotations

import re
import socket
import threading
from typing import Any

import sqlalchemy as sa
from flask import Flask

from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import AuditEvent
from idp.staff.cli import audit as audit_command
from idp.staff.models import AuditSeal


def _write(count: int, who: str = "tester") -> list[int]:
    ids = []
    for n in range(count):
        ids.append(audit.record("test.event", Actor.admin(who), None, reason=f"n{n}", n=n))
        db.session.commit()
    return [event.id for event in ids]


def _verify(app: Flask) -> Any:
    return app.test_cli_runner().invoke(audit_command, ["verify"])


def test_an_untouched_trail_verifies(app: Flask) -> None:
    _write(5)
    result = _verify(app)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditSeal)) >= 5


def test_a_row_changed_by_sql_is_named(app: Flask) -> None:
    ids = _write(5)
    with db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_event SET reason = 'nothing to see' "
                                   "WHERE id = :id"), {"id": ids[2]})
    result = _verify(app)
    assert result.exit_code == 1
    assert f"audit record #{ids[2]} was altered" in result.output


def test_a_deleted_row_is_named(app: Flask) -> None:
    ids = _write(5)
    with db.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_event WHERE id = :id"), {"id": ids[1]})
    result = _verify(app)
    assert result.exit_code == 1
    assert f"audit record #{ids[1]} was deleted" in result.output


def test_a_deleted_row_and_its_seal_break_the_next_link(app: Flask) -> None:
    ids = _write(5)
    with db.engine.begin() as connection:
        for table, column in (("audit_event", "id"), ("audit_seal", "event_id")):
            connection.execute(sa.text(f"DELETE FROM {table} WHERE {column} = :id"),  # noqa: S608
                               {"id": ids[3]})
    result = _verify(app)
    assert result.exit_code == 1
    assert f"audit record #{ids[4]} does not follow the record before it" in result.output


def test_reordered_rows_are_named(app: Flask) -> None:
    ids = _write(4)
    with db.engine.begin() as connection:  # swap the contents of two records
        rows = {row.id: row for row in connection.execute(
            sa.text("SELECT id, reason, details FROM audit_event WHERE id IN (:a, :b)"),
            {"a": ids[1], "b": ids[2]})}
        for target, source in ((ids[1], ids[2]), (ids[2], ids[1])):
            connection.execute(sa.text("UPDATE audit_event SET reason = :r WHERE id = :id"),
                               {"r": rows[source].reason, "id": target})
    result = _verify(app)
    assert result.exit_code == 1
    assert f"audit record #{ids[1]} was altered" in result.output


def test_the_key_is_not_in_the_database(app: Flask) -> None:
    key = app.extensions["idp_audit_key"].decode()
    _write(1)
    with db.engine.connect() as connection:
        for table in ("audit_event", "audit_seal"):
            dumped = str(connection.execute(sa.text(f"SELECT * FROM {table}")).all())  # noqa: S608
            assert key not in dumped


def test_two_writers_at_once_do_not_fork_the_chain(app: Flask) -> None:
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with app.app_context():
                start.wait()
                _write(15, name)
                db.session.remove()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    db.session.expire_all()
    written = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "test.event"))
    assert written == 30
    result = _verify(app)
    assert result.exit_code == 0, result.output


RFC5424 = re.compile(r'^<86>1 \S+Z \S+ idp - audit \[idp-audit@32473 id="(\d+)" '
                     r'action="([^"]+)" actor="([^"]+)" account="[^"]*" mac="([0-9a-f]{64})"\] '
                     "\ufeff\\{")


def test_export_to_a_file_and_to_syslog(app: Flask, tmp_path: Any) -> None:
    ids = _write(3)
    target = tmp_path / "audit.log"
    result = app.test_cli_runner().invoke(audit_command, ["export", "--output", str(target)])
    assert result.exit_code == 0, result.output
    lines = [line for line in target.read_text(encoding="utf-8").splitlines()
             if 'action="test.event"' in line]
    assert [int(RFC5424.match(line).group(1)) for line in lines] == ids

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    try:
        result = app.test_cli_runner().invoke(
            audit_command, ["export", "--syslog", f"127.0.0.1:{port}"])
        assert result.exit_code == 0, result.output
        received = []
        while True:
            try:
                received.append(receiver.recv(65536).decode())
            except TimeoutError:
                break
            if sum('action="test.event"' in m for m in received) == 3:
                break
    finally:
        receiver.close()
    assert [RFC5424.match(m).group(2) for m in received if 'test.event' in m] == ["test.event"] * 3


def test_records_purged_by_retention_are_not_reported_as_deleted(app: Flask) -> None:
    from datetime import timedelta

    from idp.models_base import utcnow

    old = audit.record("test.old", Actor.admin("tester"), None, reason="old")
    old.created_at = utcnow() - timedelta(days=40)
    db.session.commit()
    recent = _write(2)
    with db.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_event WHERE id = :id"), {"id": old.id})
    assert _verify(app).exit_code == 1  # kept for ever by default: a deletion
    app.config["IDP_RETENTION_AUDIT_DAYS"] = 30
    result = _verify(app)
    assert result.exit_code == 0 and "1 purged by retention" in result.output
    with db.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_event WHERE id = :id"), {"id": recent[0]})
    assert f"#{recent[0]} was deleted" in _verify(app).output
