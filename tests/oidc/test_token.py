"""The token endpoint: RFC 6749 §4.1.3/§5.2, §6, §4.4, RFC 7636 §4.6, RFC 9068, OIDC Core §3.1.3."""

import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from tests.conftest import ISSUER, CodeFlow, pkce_pair
from tests.oidc.helpers import id_token_claims, jwt_header


def test_id_token_claims__oidc_core_3_1_3_7(flow: CodeFlow, user: Any) -> None:
    tokens = flow.tokens(nonce="n-0S6_WzA2Mj")
    claims = id_token_claims(flow.browser, tokens["id_token"])
    assert claims["iss"] == ISSUER
    assert claims["sub"] == user.id
    assert claims["aud"] == [flow.client.client_id]
    assert claims["azp"] == flow.client.client_id
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["exp"] > time.time() > claims["iat"] - 5
    assert "at_hash" in claims and "auth_time" in claims
    assert claims["phone_number"] == "+8613800138000"
    assert claims["name"] == "Alice"
    assert jwt_header(flow.browser, tokens["id_token"])["alg"] == "RS256"


def test_access_token_is_an_rfc9068_jwt(flow: CodeFlow, user: Any) -> None:
    tokens = flow.tokens()
    header = jwt_header(flow.browser, tokens["access_token"])
    claims = id_token_claims(flow.browser, tokens["access_token"])
    assert header["typ"] == "at+jwt" and header["kid"]
    assert claims["sub"] == user.id
    assert claims["client_id"] == claims["aud"] == flow.client.client_id
    assert claims["jti"] and claims["scope"] == "openid profile phone"
    assert tokens["expires_in"] == 3600


def test_token_response_is_not_cached__rfc6749_5_1(flow: CodeFlow) -> None:
    response = flow.exchange(flow.code())
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_code_is_single_use_and_replay_revokes_issued_tokens__rfc6749_4_1_2(
    flow: CodeFlow,
) -> None:
    code = flow.code()
    first = flow.exchange(code).get_json()
    replay = flow.exchange(code)
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"
    userinfo = flow.browser.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert userinfo.status_code == 401
    assert flow.refresh(first["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_code_bound_to_redirect_uri__rfc6749_4_1_3(flow: CodeFlow) -> None:
    response = flow.exchange(flow.code(), redirect_uri="https://rp.example/other")
    assert response.get_json()["error"] == "invalid_grant"


def test_code_bound_to_client__rfc6749_4_1_3(flow: CodeFlow, make_client: Any) -> None:
    other, other_secret = make_client(name="Other")
    code = flow.code()
    response = flow.browser.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier,
        },
        auth=(other.client_id, other_secret),
    )
    assert response.get_json()["error"] == "invalid_grant"


def test_wrong_code_verifier_is_invalid_grant__rfc7636_4_6(flow: CodeFlow) -> None:
    wrong, _ = pkce_pair()
    response = flow.exchange(flow.code(), code_verifier=wrong)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_missing_code_verifier_is_refused__rfc7636_4_5(flow: CodeFlow) -> None:
    response = flow.exchange(flow.code(), code_verifier=None)
    assert response.get_json()["error"] == "invalid_request"


def test_pkce_downgrade_is_refused__rfc9700_4_8(flow: CodeFlow) -> None:
    code = flow.code(code_challenge=None, code_challenge_method=None)
    response = flow.exchange(code)  # a verifier for a code issued without a challenge
    assert response.get_json()["error"] == "invalid_request"


def test_expired_code_is_invalid_grant__rfc6749_4_1_2(flow: CodeFlow, app: Any) -> None:
    from idp.extensions import db
    from idp.models_base import utcnow
    from idp.oidc.models import AuthorizationCode

    code = flow.code()
    for row in db.session.query(AuthorizationCode).all():
        row.expires_at = utcnow()
    db.session.commit()
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"


def test_a_sealed_code_past_its_own_expiry_is_invalid_grant__rfc6749_4_1_2(
    flow: CodeFlow, app: Any
) -> None:
    """The expiry a code carries is checked before anything is issued, whatever its row says."""
    from datetime import timedelta

    from idp.extensions import db
    from idp.models_base import utcnow
    from idp.oidc import sealed_codes
    from idp.oidc.models import AuthorizationCode, token_digest

    code = flow.code()
    carried = sealed_codes.unseal(code)
    assert carried is not None
    expired = sealed_codes.seal({**carried, "expires_at": utcnow() - timedelta(seconds=1)})
    assert expired is not None
    row = db.session.get(AuthorizationCode, token_digest(code))
    row.code_digest = token_digest(expired)  # the row itself still live
    db.session.commit()
    assert flow.exchange(expired).get_json()["error"] == "invalid_grant"


def test_unknown_grant_type__rfc6749_5_2(flow: CodeFlow) -> None:
    response = flow.browser.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "x", "password": "y"},
        auth=(flow.client.client_id, flow.secret),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_wrong_client_secret_is_invalid_client__rfc6749_5_2(flow: CodeFlow) -> None:
    response = flow.browser.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": flow.code()},
        auth=(flow.client.client_id, "wrong"),
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in response.headers


def test_missing_code_is_invalid_request__rfc6749_5_2(flow: CodeFlow) -> None:
    response = flow.browser.post(
        "/oauth/token",
        data={"grant_type": "authorization_code"},
        auth=(flow.client.client_id, flow.secret),
    )
    assert response.get_json()["error"] == "invalid_request"


def test_grant_type_not_registered_is_unauthorized_client__rfc6749_5_2(flow: CodeFlow) -> None:
    response = flow.browser.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(flow.client.client_id, flow.secret),
    )
    assert response.get_json()["error"] == "unauthorized_client"


def test_client_secret_post__rfc6749_2_3_1(client: Any, make_client: Any, user: Any) -> None:
    from idp.extensions import db
    from tests.conftest import login

    site, secret = make_client()
    site.token_endpoint_auth_method = "client_secret_post"
    db.session.commit()
    login(client, "+8613800138000")
    flow = CodeFlow(client, site, secret)
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": flow.code(),
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier,
            "client_id": site.client_id,
            "client_secret": secret,
        },
    )
    assert response.status_code == 200, response.get_json()


def test_private_key_jwt_client_authentication__oidc_core_9(client: Any, make_client: Any) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    service, _ = make_client(
        grant_types=["client_credentials"],
        jwks=KeySet([key]).as_dict(private=False),
        scope="openid",
    )

    def assertion(jti: str) -> str:
        now = int(time.time())
        claims = {
            "iss": service.client_id,
            "sub": service.client_id,
            "jti": jti,
            "aud": f"{ISSUER}/oauth/token",
            "iat": now,
            "exp": now + 60,
        }
        return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)

    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    ok = client.post("/oauth/token", data={**data, "client_assertion": assertion("a1")})
    assert ok.status_code == 200, ok.get_json()
    replay = client.post("/oauth/token", data={**data, "client_assertion": assertion("a1")})
    # RFC 6749 §5.2: 401 is for the Authorization header; a form credential may get 400.
    assert replay.status_code in (400, 401) and replay.get_json()["error"] == "invalid_client"
    forged_key = ECKey.generate_key("P-256")
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "ES256"},
        {
            "iss": service.client_id,
            "sub": service.client_id,
            "jti": "a2",
            "aud": f"{ISSUER}/oauth/token",
            "exp": now + 60,
        },
        forged_key,
    )
    refused = client.post("/oauth/token", data={**data, "client_assertion": forged})
    assert refused.get_json()["error"] == "invalid_client"


def test_client_credentials_grant__rfc6749_4_4(client: Any, make_client: Any) -> None:
    service, secret = make_client(grant_types=["client_credentials"], scope="openid")
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(service.client_id, secret)
    )
    body = response.get_json()
    assert response.status_code == 200
    assert "refresh_token" not in body and "id_token" not in body
    claims = id_token_claims(client, body["access_token"])
    assert claims["sub"] == service.client_id


def test_public_client_cannot_use_client_credentials(client: Any, make_client: Any) -> None:
    import pytest

    from idp.oidc.clients import ClientSpecError

    with pytest.raises(ClientSpecError):
        make_client(public=True, grant_types=["client_credentials"])


def test_es256_id_tokens_per_client__oidc_registration_2(
    client: Any, make_client: Any, user: Any
) -> None:
    from tests.conftest import login

    site, secret = make_client(id_token_alg="ES256", first_party=True)
    login(client, "+8613800138000")
    tokens = CodeFlow(client, site, secret).tokens()
    assert jwt_header(client, tokens["id_token"])["alg"] == "ES256"
    assert id_token_claims(client, tokens["id_token"])["sub"] == user.id


def test_a_failure_before_the_answer_leaves_the_code_unused__rfc6749_4_1_2(
    flow: CodeFlow, monkeypatch: Any
) -> None:
    """The database fails while the ID token reads the account: the code's claim was not
    committed, so the client's retry redeems it instead of being taken for a replay."""
    from sqlalchemy.exc import OperationalError

    from idp.oidc import grants

    def database_gone(*_: Any, **__: Any) -> Any:
        raise OperationalError("SELECT identity", {}, Exception("server closed the connection"))

    assert flow.browser.get("/oauth/jwks").status_code == 200  # a first start's keys, made
    code = flow.code()
    monkeypatch.setattr(grants, "user_claims", database_gone)
    monkeypatch.setattr(grants, "cached_user_claims", database_gone)  # the claims cache's miss
    failed = flow.exchange(code)
    assert failed.status_code >= 500 and "access_token" not in (failed.get_json() or {})
    monkeypatch.undo()
    retry = flow.exchange(code)
    assert retry.status_code == 200, retry.get_json()
    assert "id_token" in retry.get_json()
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"


def test_a_code_is_sealed_and_a_changed_one_is_invalid_grant__rfc6749_10_10(
    flow: CodeFlow, user: Any
) -> None:
    """The code carries its grant sealed (`idp.oidc.sealed_codes`): it shows the front channel
    nothing of it, and one changed anywhere (or made by anyone but the IdP) is refused while
    the genuine code still works."""
    from idp.extensions import db
    from idp.identity.models import LoginSession

    code = flow.code(nonce="a-nonce-of-this-request")
    session_id = db.session.query(LoginSession.id).filter_by(account_id=user.id).first()[0]
    for secret in ("a-nonce-of-this-request", user.id, session_id, flow.redirect_uri):
        assert secret not in code
    middle = len(code) // 2
    changed = code[:middle] + ("A" if code[middle] != "A" else "B") + code[middle + 1:]
    assert flow.exchange(changed).get_json()["error"] == "invalid_grant"
    genuine = flow.exchange(code)
    assert genuine.status_code == 200, genuine.get_json()
    claims = id_token_claims(flow.browser, genuine.get_json()["id_token"])
    assert claims["nonce"] == "a-nonce-of-this-request" and claims["sub"] == user.id


def test_a_grant_too_long_to_seal_gets_a_random_code__rfc6749_4_1_2(flow: CodeFlow) -> None:
    from idp.oidc import sealed_codes

    code = flow.code(nonce="n" * sealed_codes.MAX_LENGTH)
    assert len(code) == 48
    answer = flow.exchange(code)
    assert answer.status_code == 200, answer.get_json()
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"  # used once


def test_a_sealed_code_without_its_row_is_invalid_grant__rfc6749_4_1_2(flow: CodeFlow) -> None:
    """Its row is the truth of its state: a code whose row is gone (retention) is refused."""
    from idp.extensions import db
    from idp.oidc.models import AuthorizationCode

    code = flow.code()
    db.session.query(AuthorizationCode).delete()
    db.session.commit()
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"
