"""The nonce replay check of the authorization endpoint (OIDC Core §3.1.2.1, §15.5.2): one
indexed query per authorization request, and a replayed nonce still refused."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from tests.conftest import CodeFlow, query_of


def test_one_nonce_query_per_authorization_request__oidc_core_3_1_2_1(
    app: Any, flow: CodeFlow
) -> None:
    from idp.extensions import db

    flow.code()  # signed in, consent given
    statements: list[str] = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        flow.code(nonce="n-once")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    nonce_checks = [s for s in statements if "authorization_code.nonce =" in s]
    assert len(nonce_checks) == 1, nonce_checks


def test_a_replayed_nonce_is_refused__oidc_core_15_5_2(flow: CodeFlow) -> None:
    flow.code(nonce="n-replayed")
    again = flow.authorize(nonce="n-replayed")
    assert again.status_code == 302
    assert query_of(again.headers["Location"]).get("error") == "invalid_request"


def test_the_nonce_index_exists(app: Any) -> None:
    from sqlalchemy import inspect

    from idp.extensions import db

    with app.app_context():
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("authorization_code")}
    assert "ix_authorization_code_nonce" in indexes
