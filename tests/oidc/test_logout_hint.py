"""RP-initiated logout without the user's say happens only for an ID token of this very session;
the confirmation page carries only the logout parameters (issue 10, items 1 and 2)."""

from typing import Any

from flask import Flask
from werkzeug.datastructures import MultiDict

from tests.conftest import CodeFlow, csrf_token, login, query_of
from tests.oidc.forms import click, hidden_fields
from tests.oidc.helpers import id_token_claims


def signed_in(flow: CodeFlow) -> bool:
    location = flow.authorize(consent=None).headers["Location"]
    return "code" in query_of(location)


def asks_to_confirm(response: Any) -> bool:
    return response.status_code == 200 and b'value="logout"' in response.data


def other_users_id_token(app: Flask, flow: CodeFlow, make_user: Any) -> str:
    make_user(phone="+8613900139000")
    attacker = app.test_client()
    login(attacker, "+8613900139000")
    return CodeFlow(attacker, flow.client, flow.secret).tokens()["id_token"]


def test_decision_in_the_logout_url_cannot_sign_out__rpinitiated_2(flow: CodeFlow) -> None:
    flow.tokens()
    page = flow.browser.get("/oauth/logout", query_string={"decision": "logout", "state": "s"})
    assert asks_to_confirm(page)
    assert dict(hidden_fields(page.get_data(as_text=True))).keys() == {"csrf_token", "state"}

    stayed = click(flow.browser, page, "stay")

    assert stayed.status_code == 200
    assert signed_in(flow)


def test_logout_post_with_two_decisions_is_refused__rpinitiated_2(flow: CodeFlow) -> None:
    flow.tokens()
    page = flow.browser.get("/oauth/logout")
    form = MultiDict([
        ("csrf_token", csrf_token(page.get_data(as_text=True))),
        ("decision", "stay"),
        ("decision", "logout"),
    ])
    assert flow.browser.post("/oauth/logout", data=form).status_code == 400
    assert signed_in(flow)


def test_another_users_id_token_hint_asks_first__rpinitiated_2(
    app: Flask, flow: CodeFlow, make_user: Any
) -> None:
    flow.tokens()
    hint = other_users_id_token(app, flow, make_user)

    page = flow.browser.get("/oauth/logout", query_string={"id_token_hint": hint})

    assert asks_to_confirm(page)
    assert signed_in(flow)


def test_id_token_hint_of_an_earlier_session_asks_first__rpinitiated_2(
    client: Any, website: Any, user: Any
) -> None:
    login(client, "+8613800138000")
    old_hint = CodeFlow(client, website[0], website[1]).tokens()["id_token"]
    login(client, "+8613800138000")  # a new session: same `sub`, another `sid`
    flow = CodeFlow(client, website[0], website[1])
    flow.tokens()

    page = client.get("/oauth/logout", query_string={"id_token_hint": old_hint})

    assert asks_to_confirm(page)
    assert signed_in(flow)


def test_confirmed_logout_with_a_foreign_hint_ends_the_session__rpinitiated_3(
    app: Flask, flow: CodeFlow, make_user: Any
) -> None:
    flow.tokens()
    hint = other_users_id_token(app, flow, make_user)
    page = flow.browser.get(
        "/oauth/logout",
        query_string={"id_token_hint": hint, "post_logout_redirect_uri": "https://rp.example/bye"},
    )

    done = click(flow.browser, page, "logout")

    assert done.status_code == 302 and done.headers["Location"] == "https://rp.example/bye"
    assert flow.authorize(consent=None).headers["Location"].startswith("/login")


def test_access_token_is_not_an_id_token_hint__rpinitiated_2(flow: CodeFlow) -> None:
    access_token = flow.tokens()["access_token"]

    response = flow.browser.get("/oauth/logout", query_string={"id_token_hint": access_token})

    assert response.status_code == 400
    assert signed_in(flow)


def test_logout_token_is_not_an_id_token_hint__rpinitiated_2(flow: CodeFlow) -> None:
    from idp.events.backchannel_logout import LOGOUT_TOKEN_TYPE, logout_token_claims
    from idp.events.sets import sign_set

    tokens = flow.tokens()
    own = id_token_claims(flow.browser, tokens["id_token"])
    with flow.browser.application.test_request_context():
        logout_token = sign_set(
            logout_token_claims(flow.client.client_id, own["sub"], own["sid"]),
            token_type=LOGOUT_TOKEN_TYPE,
        )

    response = flow.browser.get("/oauth/logout", query_string={"id_token_hint": logout_token})

    assert response.status_code == 400
    assert signed_in(flow)


def test_repeated_logout_parameter_is_refused__rpinitiated_2(flow: CodeFlow) -> None:
    tokens = flow.tokens()
    query = MultiDict([("id_token_hint", tokens["id_token"]), ("state", "a"), ("state", "b")])

    assert flow.browser.get("/oauth/logout", query_string=query).status_code == 400
    assert signed_in(flow)
