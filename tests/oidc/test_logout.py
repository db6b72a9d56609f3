"""OIDC RP-Initiated Logout 1.0."""

from typing import Any

from tests.conftest import CodeFlow, csrf_token, query_of


def test_logout_with_id_token_hint_redirects_with_state__rpinitiated_2(flow: CodeFlow) -> None:
    tokens = flow.tokens()
    response = flow.browser.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://rp.example/bye",
            "state": "s1",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://rp.example/bye")
    assert query_of(response.headers["Location"])["state"] == "s1"
    # The IdP session is over: the next authorization needs a login.
    assert flow.authorize(consent=None).headers["Location"].startswith("/login")


def test_logout_refuses_unregistered_post_logout_redirect__rpinitiated_3(flow: CodeFlow) -> None:
    tokens = flow.tokens()
    response = flow.browser.get(
        "/oauth/logout",
        query_string={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://evil.example/",
        },
    )
    assert "evil.example" not in response.headers.get("Location", "")


def test_logout_without_hint_asks_for_confirmation__rpinitiated_2(flow: CodeFlow) -> None:
    flow.tokens()
    page = flow.browser.get("/oauth/logout")
    assert page.status_code == 200 and b'name="decision"' in page.data
    assert flow.authorize(consent=None).status_code == 302  # still signed in
    assert "code" in query_of(flow.authorize(consent=None).headers["Location"])
    done = flow.browser.post(
        "/oauth/logout",
        data={"decision": "logout", "csrf_token": csrf_token(page.get_data(as_text=True))},
    )
    assert done.status_code == 200
    assert flow.authorize(consent=None).headers["Location"].startswith("/login")


def test_logout_post_without_csrf_is_refused(flow: CodeFlow) -> None:
    flow.tokens()
    response = flow.browser.post("/oauth/logout", data={"decision": "logout"})
    assert response.status_code == 400
    assert "code" in query_of(flow.authorize(consent=None).headers["Location"])


def test_logout_with_forged_id_token_hint_is_refused(flow: CodeFlow) -> None:
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    forged = jwt.encode(
        {"alg": "RS256"}, {"sub": "x", "aud": flow.client.client_id}, RSAKey.generate_key(2048)
    )
    response = flow.browser.get("/oauth/logout", query_string={"id_token_hint": forged})
    assert response.status_code == 400


def test_logout_ends_the_server_side_session(flow: CodeFlow, app: Any) -> None:
    from idp.extensions import db
    from idp.identity.models import LoginSession

    tokens = flow.tokens()
    flow.browser.get("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    rows = db.session.query(LoginSession).all()
    assert rows and all(row.ended_at is not None for row in rows)
