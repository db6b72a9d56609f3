"""The authorization endpoint's common answer made in front of Flask
(`idp/oidc/hot_paths/authorize.py`): a live session asking again for what it consented to gets
its code (OIDC Core §3.1.2.5) there, with the very answer the Flask view gives; every other
request is the view's, untouched. On both databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request_started
from flask.testing import FlaskClient

from idp.extensions import db
from tests.conftest import CodeFlow, login, query_of

PHONE = "+8613800138000"


@pytest.fixture
def served_by_flask(app: Flask) -> Iterator[list[str]]:
    """The paths Flask's own pipeline served (its `request_started` signal)."""
    paths: list[str] = []

    def started(sender: Any, **_: Any) -> None:
        from flask import request

        paths.append(request.path)

    request_started.connect(started, app)
    yield paths
    request_started.disconnect(started, app)


@pytest.fixture
def consented(flow: CodeFlow) -> CodeFlow:
    """The website's consent given once, so the next requests need none."""
    assert flow.authorize(consent="allow").status_code == 302
    return flow


def _flask_view_answer(app: Flask, browser: FlaskClient, params: dict[str, str]) -> Any:
    """The same request answered by the Flask view, the lane in front of it bypassed."""
    dispatcher = app.wsgi_app
    app.wsgi_app = dispatcher.fallback  # type: ignore[attr-defined,method-assign]
    try:
        return browser.get("/oauth/authorize", query_string=params)
    finally:
        app.wsgi_app = dispatcher  # type: ignore[method-assign]


def test_the_common_request_is_answered_in_front_of_flask__oidc_core_3_1_2_5(
    app: Flask, consented: CodeFlow, served_by_flask: list[str]
) -> None:
    response = consented.authorize(state="hot", consent=None)
    assert response.status_code == 302
    assert "/oauth/authorize" not in served_by_flask
    params = query_of(response.headers["Location"])
    assert params["state"] == "hot" and params["code"] and params["iss"]
    tokens = consented.exchange(params["code"])
    assert tokens.status_code == 200, tokens.get_json()
    assert tokens.get_json()["id_token"]


def test_the_answer_is_the_flask_views_but_for_the_code_and_request_id(
    app: Flask, consented: CodeFlow
) -> None:
    hot = consented.authorize(state="same", consent=None)
    view = _flask_view_answer(app, consented.browser, consented.authorize_params(state="same"))
    assert (hot.status, hot.data) == (view.status, view.data)

    def without_code(response: Any) -> list[tuple[str, str]]:
        return sorted((name, value) for name, value in response.headers.items()
                      if name not in ("Location", "X-Request-Id"))

    assert without_code(hot) == without_code(view)
    hot_query, view_query = query_of(hot.headers["Location"]), query_of(view.headers["Location"])
    assert hot_query.keys() == view_query.keys() == {"code", "state", "iss"}
    assert hot.headers["Location"].split("?")[0] == view.headers["Location"].split("?")[0]


def test_a_replayed_nonce_is_refused_as_the_view_refuses_it__oidc_core_15_5_2(
    app: Flask, consented: CodeFlow, served_by_flask: list[str]
) -> None:
    first = consented.authorize(nonce="once", consent=None)
    assert "code" in query_of(first.headers["Location"])
    replayed = consented.authorize(nonce="once", consent=None)
    assert query_of(replayed.headers["Location"])["error"] == "invalid_request"
    assert "/oauth/authorize" not in served_by_flask
    view = _flask_view_answer(app, consented.browser, consented.authorize_params(nonce="once"))
    assert query_of(view.headers["Location"])["error"] == "invalid_request"


@pytest.mark.parametrize("extra", [
    {"prompt": "login"},
    {"prompt": "none"},
    {"prompt": "consent"},
    {"max_age": "0"},
    {"ui_locales": "en"},
    {"client_id": "nobody"},
    {"scope": "openid no-such-scope"},
    {"code_challenge": None},
    {"redirect_uri": "https://attacker.example/cb"},
    {"response_type": "token"},
], ids=lambda extra: ",".join(extra))
def test_what_the_view_decides_is_handed_to_it(
    consented: CodeFlow, served_by_flask: list[str], extra: dict[str, Any]
) -> None:
    consented.browser.get("/oauth/authorize", query_string=consented.authorize_params(**extra))
    assert served_by_flask == ["/oauth/authorize"]


def test_a_repeated_parameter_is_the_views_400__rfc6749_3_1(
    consented: CodeFlow, served_by_flask: list[str]
) -> None:
    params = consented.authorize_params()
    query = "&".join(f"{name}={value}" for name, value in params.items())
    response = consented.browser.get(f"/oauth/authorize?{query}&state=again")
    assert response.status_code == 400 and served_by_flask == ["/oauth/authorize"]
    # A name the protocol does not define may repeat, as the view lets it.
    response = consented.browser.get(f"/oauth/authorize?{query}&utm=a&utm=b")
    assert response.status_code == 302 and "code" in query_of(response.headers["Location"])
    assert served_by_flask == ["/oauth/authorize"]


def test_without_a_live_session_the_view_sends_the_browser_to_sign_in(
    client: FlaskClient, website: tuple[Any, str], user: Any, served_by_flask: list[str]
) -> None:
    flow = CodeFlow(client, *website)
    response = flow.authorize(consent=None)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert served_by_flask == ["/oauth/authorize"]
    client.set_cookie("idp_session", "forged.cookie.value")
    response = flow.authorize(consent=None)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert served_by_flask == ["/oauth/authorize", "/oauth/authorize"]


def test_a_consent_to_ask_is_the_views_page(
    client: FlaskClient, make_client: Any, user: Any, served_by_flask: list[str]
) -> None:
    login(client, PHONE)
    shop = CodeFlow(client, *make_client(name="Shop"))
    page = shop.authorize(consent=None)
    assert page.status_code == 200 and b'name="decision"' in page.data
    assert served_by_flask[-1] == "/oauth/authorize"


def test_a_client_asking_for_a_second_factor_is_the_views_step_up(
    client: FlaskClient, make_client: Any, user: Any, served_by_flask: list[str]
) -> None:
    login(client, PHONE)
    bank = CodeFlow(client, *make_client(name="Bank", require_mfa=True, first_party=True))
    response = bank.authorize(consent=None)
    assert served_by_flask[-1] == "/oauth/authorize"
    assert response.status_code in (302, 400)
    assert "code" not in query_of(response.headers.get("Location", "http://x/"))


def test_an_account_pending_deletion_is_detoured_by_the_gate(
    app: Flask, consented: CodeFlow, user: Any, served_by_flask: list[str]
) -> None:
    from datetime import timedelta

    from idp.identity.models import Account
    from idp.models_base import utcnow

    account = db.session.get(Account, user.id)
    assert account is not None
    account.deletion_requested_at = utcnow()
    account.deletion_due_at = utcnow() + timedelta(days=15)
    db.session.commit()
    response = consented.authorize(consent=None)
    assert response.status_code == 302 and "/account/deletion" in response.headers["Location"]
    assert served_by_flask == ["/oauth/authorize"]


@pytest.mark.parametrize("method", ["POST", "HEAD", "OPTIONS", "PUT"])
def test_every_other_method_is_the_views(
    consented: CodeFlow, served_by_flask: list[str], method: str
) -> None:
    consented.browser.open("/oauth/authorize", method=method,
                           query_string=consented.authorize_params())
    assert served_by_flask == ["/oauth/authorize"]


def test_a_nul_or_a_body_is_the_views(consented: CodeFlow, served_by_flask: list[str]) -> None:
    nul = consented.browser.get("/oauth/authorize",
                                query_string=consented.authorize_params(state="a\x00b"))
    assert nul.status_code == 400
    consented.browser.get("/oauth/authorize", query_string=consented.authorize_params(),
                          data="x=1", content_type="application/x-www-form-urlencoded")
    assert served_by_flask == ["/oauth/authorize", "/oauth/authorize"]


def test_a_failure_before_the_code_is_the_views_page(
    consented: CodeFlow, served_by_flask: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane writes nothing before the code: a failure there (here the database, gone while
    the session is read) is handed to the view, which answers it as a page for a person."""
    from sqlalchemy.exc import OperationalError

    from idp.accounts import sessions

    def gone(_sid: str) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(sessions, "live_session", gone)
    response = consented.authorize(consent=None)
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert served_by_flask == ["/oauth/authorize"]
