"""The browser's session is read once per request, in one statement with its account, and
never remembered across requests: a session ended, expired or waiting for a second factor, or
an account disabled or merged away, signs nobody in from the very next request."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from tests.conftest import CodeFlow, query_of, statements_of


def test_an_authorization_reads_the_session_at_most_once(app: Any, flow: CodeFlow) -> None:
    """The gate, the view and the code's insert share one read of the session with its
    account; the code's insert is the request's one other statement of the flow's own
    (besides the remembered consent, and the client when this process's cache lapsed). Once
    this process knows the session, it reads none while nothing changed
    (`idp.accounts.sessions.SESSIONS`)."""
    from idp.accounts import sessions as live

    flow.code()  # consent given
    client_id = flow.client.client_id
    live.SESSIONS._entries.clear()  # as in a process this browser has not been to
    for reads in (1, 1, 0):  # learnt its account; read after that account's versions; kept
        statements = statements_of(app, lambda: flow.code(client_id=client_id))
        sessions = [s for s in statements if "login_session" in s]
        assert len(sessions) == reads, statements
        assert all("JOIN account" in s for s in sessions)
        others = [s for s in statements if "login_session" not in s
                  and "FROM consent" not in s and "FROM oauth_client" not in s]
        assert len(others) == 1 and others[0].lstrip().startswith("INSERT INTO authorization_code")


def test_a_page_of_the_account_reads_the_session_at_most_once(app: Any, flow: CodeFlow) -> None:
    """ORM objects of the session and the account are made of the one read."""
    from idp.accounts import sessions as live

    live.SESSIONS._entries.clear()
    statements = statements_of(app, lambda: flow.browser.get("/account"))
    assert len([s for s in statements if "FROM login_session" in s]) == 1, statements


def test_a_change_to_the_session_made_through_its_object_is_written(
    app: Any, flow: CodeFlow
) -> None:
    from idp.accounts.sessions import current_account, current_session
    from idp.extensions import db
    from idp.identity.models import LoginSession

    cookie = flow.browser.get_cookie("idp_session")
    with app.test_request_context(headers={"Cookie": f"idp_session={cookie.value}"}):
        row, account = current_session(), current_account()
        assert row is not None and account is not None and account.id == row.account_id
        row.user_agent = "changed"
        db.session.commit()
        sid = row.id
    db.session.expire_all()
    assert db.session.get(LoginSession, sid).user_agent == "changed"


@pytest.mark.parametrize("change", ["ended", "second factor", "disabled", "merged"])
def test_a_session_no_longer_live_authorizes_nothing_at_once(
    flow: CodeFlow, change: str
) -> None:
    from idp.extensions import db
    from idp.identity.models import Account, AccountStatus, LoginSession
    from idp.models_base import utcnow

    flow.code()
    if change == "ended":
        db.session.execute(update(LoginSession).values(ended_at=utcnow()))
    elif change == "second factor":
        db.session.execute(update(LoginSession).values(second_factor_pending=True))
    else:
        status = AccountStatus.DISABLED if change == "disabled" else AccountStatus.MERGED
        db.session.execute(update(Account).values(status=status))
    db.session.commit()
    response = flow.authorize(consent=None, prompt="none")
    assert response.status_code == 302
    if change == "second factor":  # the gate sends the browser to give it first
        assert response.headers["Location"].startswith("/account/second-factor?")
    else:
        assert query_of(response.headers["Location"]).get("error") == "login_required"
