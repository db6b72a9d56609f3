"""The session cookie is signed and sent again only when its content changes: a signed-in
request that changes nothing (the common authorization request) carries no `Set-Cookie`, and
the session still lives exactly as long as its row (`expires_at`, fixed at sign-in)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from tests.conftest import CodeFlow, login, query_of


def _session_cookies(response: Any) -> list[str]:
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith("idp_session=")]


def test_sign_in_sets_the_cookie_with_the_sessions_lifetime(client: Any, user: Any) -> None:
    signed_in = login(client, "+8613800138000")
    cookie = _session_cookies(signed_in)
    assert len(cookie) == 1 and "Expires=" in cookie[0], cookie


def test_an_authorization_that_changes_nothing_sends_no_cookie(flow: CodeFlow) -> None:
    flow.code()  # consent given
    response = flow.authorize()
    assert response.status_code == 302 and "code" in query_of(response.headers["Location"])
    assert _session_cookies(response) == []


def test_a_session_ends_with_its_row_whatever_the_cookie_says(flow: CodeFlow) -> None:
    from idp.extensions import db
    from idp.identity.models import LoginSession
    from idp.models_base import utcnow

    flow.code()
    db.session.execute(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    response = flow.authorize(consent=None)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
