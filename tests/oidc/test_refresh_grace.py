"""A refresh that fails after its commit must not log the user out (issue 17 item 1).

The whole answer is built before the rotation commits; the same answer is given again, rebuilt
(nothing of it is stored), to the same client presenting the previous token within
IDP_REFRESH_REUSE_GRACE_SECONDS while its successor is unused; any other reuse revokes the
family (RFC 9700 §4.14.2).
SQLite and PostgreSQL; a real PostgreSQL stopped mid-refresh is in
tests/production/test_refresh_outage.py."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from idp.crypto import SecretBox
from idp.extensions import db
from idp.oidc import grants, refresh_grant
from idp.oidc.models import RefreshToken, token_digest
from tests.conftest import CodeFlow, IsolatedClient
from tests.oidc.helpers import id_token_claims

SCOPE = "openid profile phone offline_access"


def family_of(refresh_token: str) -> list[RefreshToken]:
    db.session.expire_all()
    row = db.session.get(RefreshToken, token_digest(refresh_token))
    assert row is not None
    return list(db.session.scalars(select(RefreshToken).where(RefreshToken.family == row.family)))


def assert_family_alive(refresh_token: str) -> None:
    assert [row.revoked_at for row in family_of(refresh_token)] == [None] * len(
        family_of(refresh_token)
    )


def test_a_lost_answer_is_given_again_within_the_window__rfc9700_4_14_2(
    flow: CodeFlow, monkeypatch: pytest.MonkeyPatch, user: Any
) -> None:
    """Injected failure after the commit (the response is lost: a worker killed, a connection
    dropped): the retry with the previous token gets the answer that was committed."""
    tokens = flow.tokens(scope=SCOPE)
    committed: list[dict[str, Any]] = []
    original = refresh_grant.refresh

    def answer_then_die(request: Any, **authenticated: Any) -> Any:
        status, body, headers = original(request, **authenticated)
        committed.append(dict(body))
        raise RuntimeError("the worker died after the commit")

    monkeypatch.setattr(refresh_grant, "refresh", answer_then_die)
    lost = flow.refresh(tokens["refresh_token"])
    assert lost.status_code == 500 and len(committed) == 1
    monkeypatch.undo()

    retry = flow.refresh(tokens["refresh_token"])
    body = retry.get_json()
    assert retry.status_code == 200, body
    for name in ("refresh_token", "access_token", "id_token", "scope", "token_type"):
        assert body[name] == committed[0][name], name
    assert 0 < body["expires_in"] <= committed[0]["expires_in"]
    assert id_token_claims(flow.browser, body["id_token"])["sub"] == user.id
    assert_family_alive(tokens["refresh_token"])

    # The successor works, once; after it was used, the old token is a reuse.
    newest = flow.refresh(body["refresh_token"])
    assert newest.status_code == 200, newest.get_json()
    reuse = flow.refresh(tokens["refresh_token"])
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    assert flow.refresh(newest.get_json()["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_a_failure_before_the_commit_leaves_the_old_token_as_it_was__rfc9700_4_14_2(
    flow: CodeFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database fails while the ID token reads the account: nothing was committed, so the
    retry is an ordinary refresh, not a reuse."""
    tokens = flow.tokens(scope=SCOPE)

    def database_gone(*_: Any, **__: Any) -> Any:
        raise OperationalError("SELECT identity", {}, Exception("server closed the connection"))

    monkeypatch.setattr(grants, "user_claims", database_gone)
    monkeypatch.setattr(grants, "cached_user_claims", database_gone)  # the claims cache's miss
    failed = flow.refresh(tokens["refresh_token"])
    assert failed.status_code >= 500
    assert "refresh_token" not in (failed.get_json() or {})
    monkeypatch.undo()

    rows = family_of(tokens["refresh_token"])
    assert [(row.rotated_at, row.revoked_at) for row in rows] == [(None, None)]
    retry = flow.refresh(tokens["refresh_token"])
    assert retry.status_code == 200, retry.get_json()
    assert flow.refresh(retry.get_json()["refresh_token"]).status_code == 200


def test_after_the_window_a_reuse_revokes_the_family__rfc9700_4_14_2(flow: CodeFlow) -> None:
    tokens = flow.tokens(scope=SCOPE)
    successor = flow.refresh(tokens["refresh_token"]).get_json()["refresh_token"]
    db.session.expire_all()
    rotated = db.session.get(RefreshToken, token_digest(tokens["refresh_token"]))
    rotated.rotated_at -= timedelta(seconds=31)  # the default window is 30 s
    db.session.commit()
    late = flow.refresh(tokens["refresh_token"])
    assert late.status_code == 400 and late.get_json()["error"] == "invalid_grant"
    assert flow.refresh(successor).get_json()["error"] == "invalid_grant"
    assert all(row.revoked_at is not None for row in family_of(successor))


def test_the_window_is_configurable(flow: CodeFlow, app: Flask) -> None:
    app.config["IDP_REFRESH_REUSE_GRACE_SECONDS"] = "0"  # as read from the environment
    tokens = flow.tokens(scope=SCOPE)
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_another_client_never_gets_the_answer__rfc6749_6(
    flow: CodeFlow, make_client: Any
) -> None:
    tokens = flow.tokens(scope=SCOPE)
    successor = flow.refresh(tokens["refresh_token"]).get_json()["refresh_token"]
    other, other_secret = make_client(name="Other")
    stolen = flow.browser.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(other.client_id, other_secret),
    )
    assert stolen.status_code == 400 and "access_token" not in stolen.get_json()
    assert flow.refresh(successor).get_json()["error"] == "invalid_grant"


def test_an_answer_given_before_the_encryption_key_changed_is_given_again(
    flow: CodeFlow, app: Flask
) -> None:
    """The successor is the rotated token's tag under the current encryption key; a new key
    put in front (docs/DEPLOYMENT.md, key rotation) still finds the one the old key made."""
    tokens = flow.tokens(scope=SCOPE)
    first = flow.refresh(tokens["refresh_token"]).get_json()
    app.extensions["idp_secret_box"] = SecretBox(
        "a-new-encryption-key-put-in-front," + app.config["IDP_ENCRYPTION_KEY"])
    again = flow.refresh(tokens["refresh_token"]).get_json()
    assert again["refresh_token"] == first["refresh_token"]
    assert again["access_token"] == first["access_token"]
    newest = flow.refresh(again["refresh_token"]).get_json()
    assert newest["refresh_token"] not in (first["refresh_token"], tokens["refresh_token"])


def test_no_answer_is_given_again_for_a_disabled_account__rfc6749_5_2(
    flow: CodeFlow, user: Any
) -> None:
    """A rebuilt answer is issued as a fresh one is: an account that may no longer hold tokens
    gets none, and the copy's use revokes the family."""
    from idp.identity.models import Account

    tokens = flow.tokens(scope=SCOPE)
    successor = flow.refresh(tokens["refresh_token"]).get_json()["refresh_token"]
    account = db.session.get(Account, user.id)
    account.status = "disabled"
    db.session.commit()
    retry = flow.refresh(tokens["refresh_token"])
    assert retry.status_code == 400 and "access_token" not in retry.get_json()
    assert all(row.revoked_at is not None for row in family_of(successor))


@pytest.mark.parametrize("which", ["first", "successor"])
def test_concurrent_refreshes_with_one_token_all_get_the_same_answer(
    flow: CodeFlow, app: Flask, which: str
) -> None:
    """Real threads (a client retrying on a timeout while the first request still runs); a
    family's first token (its row read) and a successor (its grant carried)."""
    tokens = flow.tokens(scope=SCOPE)
    if which == "successor":
        tokens = flow.refresh(tokens["refresh_token"]).get_json()
    client_id, secret = flow.client.client_id, flow.secret
    count = 4
    barrier = threading.Barrier(count)
    answers: list[Any] = [None] * count
    db.session.commit()

    def refresh(index: int) -> None:
        with app.app_context():
            browser = app.test_client()
            assert isinstance(browser, IsolatedClient)
            barrier.wait(timeout=30)
            response = browser.post(
                "/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                auth=(client_id, secret),
            )
            answers[index] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=refresh, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [status for status, _ in answers] == [200] * count, answers
    assert len({body["refresh_token"] for _, body in answers}) == 1
    assert_family_alive(tokens["refresh_token"])
