"""The token endpoint in front of Flask (issue 25): one implementation of the route, and the
writes of a refresh rotation (RFC 9700 §4.14.2) and of a code redemption (RFC 6749 §4.1.2) as
few statements as the work needs: the claim reads the row it claims (`UPDATE … RETURNING`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from idp.extensions import db
from idp.oidc.releases import forget_recent
from tests.conftest import CodeFlow


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL the app runs meanwhile, upper-cased."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.strip().upper())

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def writes(seen: list[str]) -> list[str]:
    """Writes of the protocol's tables (not the usage counts, written per request in tests);
    `WITH …` is the staged writes sent together (data-modifying CTEs, PostgreSQL)."""
    return [s for s in seen if s.startswith(("INSERT", "UPDATE", "DELETE", "WITH"))
            and "USAGE_COUNT" not in s.split("(")[0]]


def write_kinds(statement: str) -> list[str]:
    """The writes one statement makes, in order (several when sent together)."""
    return [" ".join(found.split()) for found in
            re.findall(r"INSERT INTO \w+|(?<!DO )UPDATE \w+ SET|DELETE FROM \w+", statement)]


def db_dialect(app: Flask) -> str:
    with app.app_context():
        return db.engine.dialect.name


def reads_of(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if s.startswith("SELECT") and f"FROM {table.upper()}" in s]


def test_the_token_endpoint_is_served_before_flask(app: Flask, flow: CodeFlow) -> None:
    assert "/oauth/token" not in {rule.rule for rule in app.url_map.iter_rules()}
    response = flow.exchange(flow.code())
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-Id"]


def test_a_refresh_token_without_its_grant_is_read_then_rotated__rfc9700_4_14_2(
    app: Flask, flow: CodeFlow
) -> None:
    """A token issued before tokens carried their grant (a bare secret, `idp.oidc.
    refresh_tokens`): its row is read by its key; then the claim, the successor and the record
    of the claims the client received again (issue 28, `idp.oidc.releases`), as one statement."""
    from idp.oidc.models import RefreshToken, token_digest

    tokens = flow.tokens(scope="openid profile offline_access")
    bare = "b" * 48
    with app.app_context():
        row = db.session.get(RefreshToken, token_digest(tokens["refresh_token"]))
        row.token_digest = token_digest(bare)
        db.session.commit()
        forget_recent()  # the record written more than a minute ago: written again
    with statements(app) as seen:
        response = flow.refresh(bare)
    assert response.status_code == 200, response.get_json()
    assert len(reads_of(seen, "refresh_token")) == 1
    sent = writes(seen)
    assert [kind for statement in sent for kind in write_kinds(statement)] == [
        "UPDATE REFRESH_TOKEN SET", "INSERT INTO REFRESH_TOKEN", "INSERT INTO CLAIM_RELEASE"]
    if db_dialect(app) == "postgresql":
        # Two statements in all, each a transaction of its own (no BEGIN, no COMMIT: the
        # rotation is whole in its one statement, its claim a CTE the other writes read).
        assert len(sent) == 1 and "RETURNING" in sent[0]
        assert len([s for s in seen if "REFRESH_TOKEN" in s]) == 2
    assert flow.refresh(response.get_json()["refresh_token"]).status_code == 200


@pytest.mark.parametrize("which", ["first", "successor"])
@pytest.mark.parametrize("recorded", ["lately", "long ago"])
def test_a_refresh_is_one_statement_without_a_read__rfc9700_4_14_2(
    app: Flask, flow: CodeFlow, which: str, recorded: str
) -> None:
    """A refresh token carries its grant (`idp.oidc.refresh_tokens`): its refresh is the
    rotation's one statement, the row's state checked by the claim — a family's first token
    (issued by the code's redemption) and a successor alike. The record of the claims
    released (`idp.oidc.releases`) is in it unless this process wrote it lately."""
    token = flow.tokens(scope="openid profile offline_access")["refresh_token"]
    if which == "successor":
        token = flow.refresh(token).get_json()["refresh_token"]
    if recorded == "long ago":
        with app.app_context():
            forget_recent()
    with statements(app) as seen:
        response = flow.refresh(token)
    assert response.status_code == 200, response.get_json()
    assert reads_of(seen, "refresh_token") == []
    release = ["INSERT INTO CLAIM_RELEASE"] if recorded == "long ago" else []
    assert [kind for statement in writes(seen) for kind in write_kinds(statement)] == [
        "UPDATE REFRESH_TOKEN SET", "INSERT INTO REFRESH_TOKEN", *release]
    if db_dialect(app) == "postgresql":
        assert len([s for s in seen if "REFRESH_TOKEN" in s]) == 1


def test_a_lost_rotation_race_writes_nothing__rfc9700_4_14_2(
    app: Flask, flow: CodeFlow
) -> None:
    """The token is claimed by someone else between the read and the rotation: the rotation
    matches no row, so no successor, no release and no answer are written."""
    from sqlalchemy import update

    from idp.models_base import utcnow
    from idp.oidc import refresh_grant
    from idp.oidc.models import RefreshToken, token_digest

    tokens = flow.tokens(scope="openid offline_access")
    original = refresh_grant.rotate
    digest = token_digest(tokens["refresh_token"])

    def racer_first(row: Any, token: Any, client: Any, now: Any, successor: Any) -> bool:
        with db.engine.begin() as connection:  # the racer's rotation, committed meanwhile
            connection.execute(
                update(RefreshToken).where(RefreshToken.token_digest == digest)
                .values(rotated_at=utcnow()))
        return original(row, token, client, now, successor)

    refresh_grant.rotate = racer_first  # type: ignore[assignment]
    try:
        response = flow.refresh(tokens["refresh_token"])
    finally:
        refresh_grant.rotate = original  # type: ignore[assignment]
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    with app.app_context():
        rows = db.session.query(RefreshToken).all()
        assert len(rows) == 1  # no successor
        # The racer left no successor: there is no answer to give again, and the copy's use
        # revoked the family.
        assert rows[0].revoked_at is not None


def test_a_code_redemption_is_one_statement_the_code_carrying_its_grant__rfc6749_4_1_2(
    app: Flask, flow: CodeFlow
) -> None:
    """The code is sealed with its grant (`idp.oidc.sealed_codes`): its row is not read, its
    claim checks it unused and unexpired."""
    code = flow.code(scope="openid profile offline_access")
    with statements(app) as seen:
        response = flow.exchange(code)
    assert response.status_code == 200, response.get_json()
    assert reads_of(seen, "authorization_code") == []
    protocol = [statement for statement in writes(seen) if "SIGNING_KEY" not in statement]
    # The claim, which records what was issued from the code; the refresh token; the record
    # of the claims the client received (issue 28).
    assert [kind for statement in protocol for kind in write_kinds(statement)] == [
        "UPDATE AUTHORIZATION_CODE SET", "INSERT INTO REFRESH_TOKEN", "INSERT INTO CLAIM_RELEASE"]
    if db_dialect(app) == "postgresql":
        assert len(protocol) == 1 and "RETURNING" in protocol[0]  # one transaction of its own


def test_a_code_redeemed_meanwhile_is_a_replay_and_writes_nothing__rfc6749_4_1_2(
    app: Flask, flow: CodeFlow
) -> None:
    """A concurrent redemption claims the code between this one's read and its write: this
    one writes nothing and is answered as the replay it is (what the racer was issued is
    revoked)."""
    from idp.oidc import grants
    from idp.oidc.models import RefreshToken

    code = flow.code(scope="openid offline_access")
    original = grants.redeem
    racer: dict[str, Any] = {}

    def racer_first(request: Any, token: Any) -> bool:
        racer["won"] = original(request, dict(token, refresh_token="racer-refresh-token"))
        return original(request, token)

    grants.redeem = racer_first  # type: ignore[assignment]
    try:
        response = flow.exchange(code)
    finally:
        grants.redeem = original  # type: ignore[assignment]
    assert racer["won"] is True
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    with app.app_context():
        rows = db.session.query(RefreshToken).all()
        assert len(rows) == 1 and rows[0].revoked_at is not None  # the racer's, revoked


def test_each_successor_names_its_predecessor_and_no_answer_is_stored__rfc9700_4_14_2(
    app: Flask, flow: CodeFlow
) -> None:
    """A family is a chain: each successor names the token it succeeded. No row holds a token
    of the answers (PIPL Art. 19: a lost answer is rebuilt, not kept)."""
    from idp.oidc.models import RefreshToken, token_digest

    tokens = flow.tokens(scope="openid profile offline_access")
    presented, answers = [tokens["refresh_token"]], [tokens]
    for _ in range(4):
        tokens = flow.refresh(tokens["refresh_token"]).get_json()
        presented.append(tokens["refresh_token"])
        answers.append(tokens)
    with app.app_context():
        rows = [db.session.get(RefreshToken, token_digest(each)) for each in presented]
        assert [row.predecessor_digest for row in rows] == [
            None, *(row.token_digest for row in rows[:-1])]
        with db.engine.connect() as connection:
            stored = repr(connection.exec_driver_sql("SELECT * FROM refresh_token").all())
    for answer in answers:
        for name in ("refresh_token", "access_token", "id_token"):
            assert answer[name] not in stored
            assert answer[name].split(".")[-1] not in stored


def test_no_index_reads_a_column_a_rotation_changes(app: Flask, backend: str) -> None:
    """The claim changes `rotated_at` only (a revocation `revoked_at`): with no index on them
    (nor in an index's condition), PostgreSQL updates the row in place (a heap-only tuple)
    instead of writing an entry into every index of the table."""
    from sqlalchemy import inspect

    changed = {"rotated_at", "revoked_at"}
    with app.app_context():
        indexes = inspect(db.engine).get_indexes("refresh_token")
        for index in indexes:
            assert not changed & set(index["column_names"]), index
        if backend == "postgresql":
            with db.engine.connect() as connection:
                definitions = connection.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes WHERE tablename = 'refresh_token'"
                ).scalars().all()
            assert definitions and not any(
                name in definition for definition in definitions for name in changed)


def test_codes_are_unlogged_on_postgresql(app: Flask, backend: str) -> None:
    """A code's row writes no WAL on PostgreSQL (`AuthorizationCode`); every other protocol
    table stays logged: a refresh token, a consent, a revocation survive a crash."""
    if backend != "postgresql":
        pytest.skip("SQLite has no WAL-less tables")
    with app.app_context(), db.engine.connect() as connection:
        persistence = dict(connection.exec_driver_sql(
            "SELECT relname, relpersistence FROM pg_class WHERE relname IN ("
            "'authorization_code', 'refresh_token', 'consent', 'revoked_access_token')").all())
    assert persistence == {"authorization_code": "u", "refresh_token": "p", "consent": "p",
                           "revoked_access_token": "p"}


def test_a_code_whose_row_a_crash_took_is_refused__rfc6749_4_1_2(
    app: Flask, flow: CodeFlow
) -> None:
    """Crash recovery empties an unlogged table. A code issued before it carries its whole
    grant, but without its row it is not redeemable: `invalid_grant`, nothing issued."""
    from idp.oidc.models import RefreshToken

    code = flow.code(scope="openid offline_access")
    with app.app_context():
        db.session.execute(db.text("DELETE FROM authorization_code"))  # what recovery does
        db.session.commit()
    response = flow.exchange(code)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert "access_token" not in response.get_json()
    with app.app_context():
        assert db.session.query(RefreshToken).count() == 0
