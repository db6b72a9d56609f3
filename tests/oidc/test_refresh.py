"""Refresh tokens: RFC 6749 §6, rotation and reuse detection (RFC 9700 §4.14.2)."""

from typing import Any

from tests.conftest import CodeFlow
from tests.oidc.helpers import id_token_claims


def test_refresh_rotates_and_returns_a_new_id_token__oidc_core_12_2(
    flow: CodeFlow, user: Any
) -> None:
    tokens = flow.tokens(scope="openid profile offline_access")
    refreshed = flow.refresh(tokens["refresh_token"])
    body = refreshed.get_json()
    assert refreshed.status_code == 200, body
    assert body["refresh_token"] != tokens["refresh_token"]
    assert body["access_token"] != tokens["access_token"]
    claims = id_token_claims(flow.browser, body["id_token"])
    assert claims["sub"] == user.id and "nonce" not in claims


def test_reused_refresh_token_revokes_the_family__rfc9700_4_14_2(flow: CodeFlow, app: Any) -> None:
    """Without a grace window (see tests/oidc/test_refresh_grace.py for the window)."""
    app.config["IDP_REFRESH_REUSE_GRACE_SECONDS"] = 0
    tokens = flow.tokens()
    second = flow.refresh(tokens["refresh_token"]).get_json()
    reuse = flow.refresh(tokens["refresh_token"])
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    # The legitimate holder's newer token and access token died with the family.
    assert flow.refresh(second["refresh_token"]).get_json()["error"] == "invalid_grant"
    userinfo = flow.browser.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert userinfo.status_code == 401


def test_refresh_cannot_widen_scope__rfc6749_6(flow: CodeFlow) -> None:
    tokens = flow.tokens(scope="openid profile")
    response = flow.refresh(tokens["refresh_token"], scope="openid profile email")
    assert response.get_json()["error"] == "invalid_scope"


def test_refresh_can_narrow_scope__rfc6749_6(flow: CodeFlow) -> None:
    tokens = flow.tokens(scope="openid profile phone")
    response = flow.refresh(tokens["refresh_token"], scope="openid")
    assert response.get_json()["scope"] == "openid"


def test_refresh_token_is_bound_to_its_client__rfc6749_6(flow: CodeFlow, make_client: Any) -> None:
    other, secret = make_client(name="Other")
    tokens = flow.tokens()
    response = flow.browser.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(other.client_id, secret),
    )
    assert response.get_json()["error"] == "invalid_grant"


def test_unknown_refresh_token_is_invalid_grant__rfc6749_5_2(flow: CodeFlow) -> None:
    assert flow.refresh("not-a-token").get_json()["error"] == "invalid_grant"


def test_disabled_account_gets_no_new_tokens(flow: CodeFlow, user: Any) -> None:
    from idp.extensions import db

    tokens = flow.tokens()
    user.status = "disabled"
    db.session.commit()
    assert flow.refresh(tokens["refresh_token"]).status_code == 400


def test_a_successor_carries_its_grant_under_the_idps_tag__rfc6749_10_4(
    flow: CodeFlow, make_user: Any
) -> None:
    """`<secret>.<grant>.<mac>`: a grant altered (another account, a wider scope) or a mac
    not ours finds no token; the genuine one still works."""
    import base64
    import json

    tokens = flow.tokens(scope="openid offline_access")
    successor = flow.refresh(tokens["refresh_token"]).get_json()["refresh_token"]
    secret, grant, mac = successor.split(".")
    assert len(secret) == 48 and len(mac) == 22
    carried = json.loads(base64.urlsafe_b64decode(grant + "=="))
    other = make_user(name="Mallory")
    for altered in ([*carried[:2], other.id, *carried[3:]],
                    [*carried[:3], "openid offline_access profile phone", *carried[4:]]):
        body = base64.urlsafe_b64encode(json.dumps(altered, separators=(",", ":")).encode())
        forged = f"{secret}.{body.rstrip(b'=').decode()}.{mac}"
        answer = flow.refresh(forged)
        assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant"
    assert flow.refresh(f"{secret}.{grant}.{'A' * 22}").get_json()["error"] == "invalid_grant"
    assert flow.refresh(f"{secret}.{grant}").get_json()["error"] == "invalid_grant"
    good = flow.refresh(successor)
    assert good.status_code == 200, good.get_json()


def test_a_hostile_grant_in_a_refresh_token_is_invalid_grant_never_a_500__rfc6749_5_2(
    flow: CodeFlow,
) -> None:
    """The token endpoint reads the account a token names before anything is checked (to read
    its cache versions with the rate limit): deeply nested, huge, or not JSON at all, the
    answer is the grant's own refusal."""
    import base64

    def grant(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    for body in ("[" * 20_000 + "]" * 20_000, "[" * 2_000, '["a","b",' + '"x",' * 3_000 + '"c"]',
                 "not json", '{"account_id": "x"}', '[1,2,{"a":1},4,5,6,7]'):
        answer = flow.refresh(f"secret.{grant(body)}.{'A' * 22}")
        assert answer.status_code == 400, (body[:20], answer.status_code)
        assert answer.get_json()["error"] == "invalid_grant"
