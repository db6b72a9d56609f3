"""The authorization endpoint: OIDC Core §3.1.2, RFC 6749 §4.1, RFC 7636, RFC 9207, RFC 9700."""

from typing import Any

from tests.conftest import ISSUER, CodeFlow, login, query_of


def test_code_response_carries_state_and_iss__rfc9207_2(flow: CodeFlow) -> None:
    response = flow.authorize(state="xyz")
    params = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith("https://rp.example/callback?")
    assert params["state"] == "xyz"
    assert params["iss"] == ISSUER
    assert params["code"]


def test_iss_follows_the_redirect_uris_own_query_as_authlib_encodes_it__rfc9207_2(
    flow: CodeFlow, make_client: Any
) -> None:
    """`iss` is appended to the `Location` Authlib built: the very bytes of Authlib's
    `add_params_to_uri` applied twice (the redirect URI's own query kept, RFC 6749 §3.1.2)."""
    from authlib.common.urls import add_params_to_uri

    redirect_uri = "https://rp.example/cb?x=a+b&y=%2F&z="
    client, secret = make_client(name="Query", redirect_uris=[redirect_uri])
    queried = CodeFlow(flow.browser, client, secret, redirect_uri)
    response = queried.authorize(state="s t")
    location = response.headers["Location"]
    code = query_of(location)["code"]
    expected = add_params_to_uri(
        add_params_to_uri(redirect_uri, [("code", code), ("state", "s t")]), {"iss": ISSUER}
    )
    assert location == expected
    error = queried.authorize(state="s t", scope="openid no-such-scope")
    assert error.headers["Location"].startswith("https://rp.example/cb?x=a+b&y=%2F&z=&error=")
    assert error.headers["Location"].endswith("&iss=http%3A%2F%2F127.0.0.1%3A5000")


def test_unknown_client_is_shown_an_error_page_never_redirected__rfc6749_4_1_2_1(
    flow: CodeFlow,
) -> None:
    response = flow.browser.get(
        "/oauth/authorize",
        query_string=flow.authorize_params(client_id="nobody"),
    )
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert b"invalid_client" in response.data


def test_unregistered_redirect_uri_is_never_redirected_to__rfc6749_4_1_2_1(flow: CodeFlow) -> None:
    for uri in (
        "https://evil.example/callback",
        "https://rp.example/callback/../evil",
        "https://rp.example/callback?x=1",
        "https://rp.example/CALLBACK",
    ):
        response = flow.browser.get(
            "/oauth/authorize", query_string=flow.authorize_params(redirect_uri=uri)
        )
        assert response.status_code == 400, uri
        assert "Location" not in response.headers


def test_unsupported_response_type_is_redirected_with_error__rfc6749_4_1_2_1(
    flow: CodeFlow,
) -> None:
    for response_type in ("token", "id_token", "code id_token", "code token"):
        response = flow.browser.get(
            "/oauth/authorize", query_string=flow.authorize_params(response_type=response_type)
        )
        assert response.status_code == 302, response_type
        params = query_of(response.headers["Location"])
        assert params["error"] in ("unsupported_response_type", "unauthorized_client")
        assert params["iss"] == ISSUER
        assert "code" not in params


def test_missing_response_type_is_an_invalid_request__rfc6749_4_1_2_1(flow: CodeFlow) -> None:
    response = flow.browser.get(
        "/oauth/authorize", query_string=flow.authorize_params(response_type=None)
    )
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert query_of(response.headers["Location"])["error"] in (
            "unsupported_response_type",
            "invalid_request",
        )


def test_unknown_scope_is_invalid_scope__rfc6749_4_1_2_1(flow: CodeFlow) -> None:
    response = flow.browser.get(
        "/oauth/authorize", query_string=flow.authorize_params(scope="openid admin:everything")
    )
    params = query_of(response.headers["Location"])
    assert params["error"] == "invalid_scope"
    assert params["state"]


def test_denied_consent_is_access_denied__rfc6749_4_1_2_1(flow: CodeFlow) -> None:
    response = flow.authorize(consent="deny")
    assert query_of(response.headers["Location"])["error"] == "access_denied"


def test_public_client_without_pkce_is_refused__rfc9700_2_1_1(
    client: Any, make_client: Any, user: Any
) -> None:
    public, _ = make_client(public=True, redirect_uris=["https://spa.example/cb"])
    login(client, user_phone(user))
    flow = CodeFlow(client, public, None, redirect_uri="https://spa.example/cb")
    response = flow.authorize(code_challenge=None, code_challenge_method=None)
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_plain_pkce_is_refused__rfc9700_2_1_1(flow: CodeFlow) -> None:
    for method in ("plain", None):
        response = flow.authorize(code_challenge_method=method)
        assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_prompt_none_without_session_is_login_required__oidc_core_3_1_2_6(
    client: Any, website: Any
) -> None:
    flow = CodeFlow(client, website[0], website[1])
    response = flow.authorize(prompt="none")
    params = query_of(response.headers["Location"])
    assert params["error"] == "login_required"
    assert params["iss"] == ISSUER


def test_prompt_none_without_consent_is_consent_required__oidc_core_3_1_2_6(
    flow: CodeFlow,
) -> None:
    response = flow.authorize(prompt="none")
    assert query_of(response.headers["Location"])["error"] == "consent_required"


def test_prompt_none_with_session_and_consent_answers_silently__oidc_core_3_1_2_1(
    flow: CodeFlow,
) -> None:
    flow.code()  # consents once
    response = flow.authorize(consent=None, prompt="none")
    assert "code" in query_of(response.headers["Location"])


def test_prompt_none_mixed_with_other_values_is_invalid__oidc_core_3_1_2_1(flow: CodeFlow) -> None:
    response = flow.authorize(prompt="none login")
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_without_session_the_user_is_sent_to_login_with_hint(client: Any, website: Any) -> None:
    flow = CodeFlow(client, website[0], website[1])
    response = flow.authorize(login_hint="+8613800138000", ui_locales="zh-CN")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?")
    params = query_of(location)
    assert params["login_hint"] == "+8613800138000"
    assert params["next"].startswith("/oauth/authorize?")


def test_prompt_login_forces_reauthentication__oidc_core_3_1_2_1(flow: CodeFlow) -> None:
    response = flow.authorize(prompt="login")
    assert response.headers["Location"].startswith("/login?")
    next_url = query_of(response.headers["Location"])["next"]
    assert "prompt=login" not in next_url  # no loop after the fresh login


def test_max_age_exceeded_forces_reauthentication__oidc_core_3_1_2_1(flow: CodeFlow) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from idp.extensions import db
    from idp.identity.models import LoginSession

    # The sign-in happened 1.1 s ago (its auth_time moved back rather than waited for).
    for row in db.session.scalars(select(LoginSession)):
        row.auth_time = row.auth_time - timedelta(seconds=1.1)
    db.session.commit()
    response = flow.authorize(max_age="0")
    assert response.headers["Location"].startswith("/login?")


def test_max_age_within_bound_gives_auth_time__oidc_core_2(flow: CodeFlow) -> None:
    tokens = flow.tokens(max_age="3600")
    from tests.oidc.helpers import id_token_claims

    claims = id_token_claims(flow.browser, tokens["id_token"])
    assert isinstance(claims["auth_time"], int)


def test_consent_is_remembered_per_client_and_scope_set(flow: CodeFlow) -> None:
    flow.code()
    assert flow.authorize(consent=None).status_code == 302  # same scopes: no screen
    wider = flow.authorize(consent=None, scope="openid profile phone email")
    assert wider.status_code == 200 and b'name="decision"' in wider.data
    again = flow.authorize(consent=None, prompt="consent")
    assert again.status_code == 200


def test_first_party_client_skips_consent(client: Any, make_client: Any, user: Any) -> None:
    first, secret = make_client(first_party=True)
    login(client, user_phone(user))
    response = CodeFlow(client, first, secret).authorize(consent=None)
    assert "code" in query_of(response.headers["Location"])


def test_consent_post_requires_csrf(flow: CodeFlow) -> None:
    form = dict(flow.authorize_params(), decision="allow")
    response = flow.browser.post("/oauth/authorize", data=form)
    assert response.status_code == 400
    assert "Location" not in response.headers


def user_phone(user: Any) -> str:
    from idp.identity.accounts import identities_of
    from idp.identity.models import IdentityKind

    return identities_of(user, IdentityKind.PHONE)[0].value
