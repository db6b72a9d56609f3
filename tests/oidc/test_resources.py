"""Userinfo (OIDC Core §5.3), revocation (RFC 7009), introspection (RFC 7662), keys."""

from typing import Any

import pytest

from tests.conftest import CodeFlow
from tests.oidc.helpers import id_token_claims


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_userinfo_get_and_post_serve_claims_by_scope__oidc_core_5_3(
    flow: CodeFlow, user: Any
) -> None:
    tokens = flow.tokens(scope="openid profile phone")
    for method in (flow.browser.get, flow.browser.post):
        response = method("/oauth/userinfo", headers=bearer(tokens["access_token"]))
        claims = response.get_json()
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert claims["sub"] == user.id
        assert claims["name"] == "Alice"
        assert claims["phone_number"] == "+8613800138000"
        assert claims["phone_number_verified"] is True
        assert isinstance(claims["updated_at"], int)
        assert "email" not in claims  # not asked for


def test_userinfo_email_scope(flow: CodeFlow) -> None:
    tokens = flow.tokens(scope="openid email")
    claims = flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is False
    assert "name" not in claims and "phone_number" not in claims


def test_userinfo_refuses_missing_bad_and_id_tokens__rfc6750_3_1(flow: CodeFlow) -> None:
    tokens = flow.tokens()
    assert flow.browser.get("/oauth/userinfo").status_code == 401
    bad = flow.browser.get("/oauth/userinfo", headers=bearer("garbage"))
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_token"
    # An ID token is not an access token (RFC 9068 §4: typ at+jwt).
    assert (
        flow.browser.get("/oauth/userinfo", headers=bearer(tokens["id_token"])).status_code == 401
    )


def test_userinfo_needs_openid_scope__oidc_core_5_3(client: Any, make_client: Any) -> None:
    service, secret = make_client(grant_types=["client_credentials"], scope="openid profile")
    token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "profile"},
        auth=(service.client_id, secret),
    ).get_json()["access_token"]
    response = client.get("/oauth/userinfo", headers=bearer(token))
    assert response.status_code in (401, 403)


def test_revoking_an_access_token__rfc7009_2_1(flow: CodeFlow) -> None:
    tokens = flow.tokens()
    response = flow.browser.post(
        "/oauth/revoke",
        data={"token": tokens["access_token"]},
        auth=(flow.client.client_id, flow.secret),
    )
    assert response.status_code == 200
    assert (
        flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code
        == 401
    )
    introspection = flow.browser.post(
        "/oauth/introspect",
        data={"token": tokens["access_token"]},
        auth=(flow.client.client_id, flow.secret),
    ).get_json()
    assert introspection == {"active": False}


@pytest.mark.parametrize("which", ["first", "successor"])
def test_revoking_a_refresh_token_ends_the_grant__rfc7009_2_1(flow: CodeFlow, which: str) -> None:
    """A family's first token and a successor (which carries its grant: idp.oidc.refresh_grant)
    alike."""
    tokens = flow.tokens()
    if which == "successor":
        tokens = flow.refresh(tokens["refresh_token"]).get_json()
    flow.browser.post(
        "/oauth/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(flow.client.client_id, flow.secret),
    )
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert (
        flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code
        == 401
    )


def test_revoking_unknown_or_foreign_tokens_answers_200__rfc7009_2_2(
    flow: CodeFlow, make_client: Any
) -> None:
    other, secret = make_client(name="Other")
    tokens = flow.tokens()
    assert (
        flow.browser.post(
            "/oauth/revoke", data={"token": "nope"}, auth=(flow.client.client_id, flow.secret)
        ).status_code
        == 200
    )
    foreign = flow.browser.post(
        "/oauth/revoke", data={"token": tokens["access_token"]}, auth=(other.client_id, secret)
    )
    assert foreign.status_code == 200
    # …and another client's revocation did nothing.
    assert (
        flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code
        == 200
    )


def test_revocation_needs_client_authentication__rfc7009_2_1(flow: CodeFlow) -> None:
    tokens = flow.tokens()
    response = flow.browser.post(
        "/oauth/revoke",
        data={"token": tokens["access_token"]},
        auth=(flow.client.client_id, "wrong"),
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_revocation_unsupported_hint__rfc7009_2_2_1(flow: CodeFlow) -> None:
    response = flow.browser.post(
        "/oauth/revoke",
        data={"token": "x", "token_type_hint": "weird"},
        auth=(flow.client.client_id, flow.secret),
    )
    assert response.get_json()["error"] == "unsupported_token_type"


def test_introspection_of_active_tokens__rfc7662_2_2(flow: CodeFlow, user: Any) -> None:
    tokens = flow.tokens()
    auth = (flow.client.client_id, flow.secret)
    access = flow.browser.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=auth
    ).get_json()
    assert access["active"] is True and access["sub"] == user.id
    assert access["client_id"] == flow.client.client_id and access["scope"]
    refresh = flow.browser.post(
        "/oauth/introspect", data={"token": tokens["refresh_token"]}, auth=auth
    ).get_json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    assert flow.browser.post("/oauth/introspect", data={"token": "nope"}, auth=auth).get_json() == {
        "active": False
    }


def test_introspection_requires_an_authenticated_client__rfc7662_2_1(flow: CodeFlow) -> None:
    tokens = flow.tokens()
    response = flow.browser.post("/oauth/introspect", data={"token": tokens["access_token"]})
    assert response.status_code == 401


def test_introspection_hides_other_clients_tokens__rfc7662_2_1(
    flow: CodeFlow, make_client: Any
) -> None:
    other, secret = make_client(name="Other")
    tokens = flow.tokens()
    answer = flow.browser.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=(other.client_id, secret)
    ).get_json()
    assert answer == {"active": False}


def test_key_rotation_keeps_old_tokens_valid_until_retired(flow: CodeFlow, app: Any) -> None:
    from idp.oidc.keys import retire_key, rotate_keys

    before = flow.tokens()
    old_kid = flow.browser.get("/oauth/jwks").get_json()["keys"]
    rotate_keys(app.extensions["idp_secret_box"])
    after = flow.tokens()
    from tests.oidc.helpers import jwt_header

    assert (
        jwt_header(flow.browser, after["id_token"])["kid"]
        != jwt_header(flow.browser, before["id_token"])["kid"]
    )
    # The old token still verifies: its key is still published.
    assert id_token_claims(flow.browser, before["id_token"])["sub"]
    assert (
        flow.browser.get("/oauth/userinfo", headers=bearer(before["access_token"])).status_code
        == 200
    )
    for key in old_kid:
        retire_key(key["kid"], app.extensions["idp_keyring"].sign_after)
    assert (
        flow.browser.get("/oauth/userinfo", headers=bearer(before["access_token"])).status_code
        == 401
    )
    assert (
        flow.browser.get("/oauth/userinfo", headers=bearer(after["access_token"])).status_code
        == 200
    )


def test_current_key_cannot_be_retired(app: Any, client: Any) -> None:
    import pytest

    from idp.oidc.keys import SigningKeyUnavailable, retire_key

    current = client.get("/oauth/jwks").get_json()["keys"][0]["kid"]
    with pytest.raises(SigningKeyUnavailable):
        retire_key(current, app.extensions["idp_keyring"].sign_after)


def test_private_keys_are_encrypted_at_rest(app: Any, client: Any) -> None:
    from idp.extensions import db
    from idp.oidc.models import SigningKey

    client.get("/oauth/jwks")
    for row in db.session.query(SigningKey).all():
        assert '"d"' not in row.private_jwk_encrypted
        assert row.private_jwk_encrypted.startswith(app.extensions["idp_secret_box"].current_key_id)
