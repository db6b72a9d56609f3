"""The token endpoint in front of Flask (issue 25): one implementation of the route, and the
writes of a refresh rotation (RFC 9700 §4.14.2) and of a code redemption (RFC 6749 §4.1.2) as
few statements as the work needs: the claim reads the row it claims (`UPDATE … RETURNING`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event

from idp.extensions import db
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
    """Writes of the protocol's tables (not the usage counts, written per request in tests)."""
    return [s for s in seen if s.startswith(("INSERT", "UPDATE", "DELETE"))
            and "USAGE_COUNT" not in s.split("(")[0]]


def reads_of(seen: list[str], table: str) -> list[str]:
    return [s for s in seen if s.startswith("SELECT") and f"FROM {table.upper()}" in s]


def test_the_token_endpoint_is_served_before_flask(app: Flask, flow: CodeFlow) -> None:
    assert "/oauth/token" not in {rule.rule for rule in app.url_map.iter_rules()}
    response = flow.exchange(flow.code())
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-Id"]


def test_a_refresh_rotation_is_three_token_writes_and_reads_no_token_row__rfc9700_4_14_2(
    app: Flask, flow: CodeFlow
) -> None:
    tokens = flow.tokens(scope="openid profile offline_access")
    with statements(app) as seen:
        response = flow.refresh(tokens["refresh_token"])
    assert response.status_code == 200, response.get_json()
    # The claim (which returns the row), the successor, the answer kept for the grace window;
    # and the record of the claims the client received again (issue 28, `idp.oidc.releases`).
    kinds = [" ".join(s.split()[:3]) for s in writes(seen)]
    assert kinds == ["UPDATE REFRESH_TOKEN SET", "INSERT INTO REFRESH_TOKEN",
                     "INSERT INTO CLAIM_RELEASE", "UPDATE REFRESH_TOKEN SET"]
    assert "RETURNING" in writes(seen)[0]
    assert reads_of(seen, "refresh_token") == []


def test_a_code_redemption_claims_and_reads_the_code_in_one_statement__rfc6749_4_1_2(
    app: Flask, flow: CodeFlow
) -> None:
    code = flow.code(scope="openid profile offline_access")
    with statements(app) as seen:
        response = flow.exchange(code)
    assert response.status_code == 200, response.get_json()
    claim = writes(seen)[0]
    assert claim.startswith("UPDATE AUTHORIZATION_CODE") and "RETURNING" in claim
    assert reads_of(seen, "authorization_code") == []
    assert len([s for s in writes(seen) if s.startswith("INSERT INTO REFRESH_TOKEN")]) == 1
