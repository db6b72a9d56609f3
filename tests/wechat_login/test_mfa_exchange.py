"""The mini-program's token exchange honours second factors (issue 14): `mfa_required` with an
`mfa_token` (Auth0's MFA API design, RFC 6749 §5.2 extension error), then a second RFC 8693
exchange with `otp` or `recovery_code`; `amr` and `acr` say so (RFC 8176 §2, OIDC Core §2).
Real HTTP to the fake WeChat; SQLite and PostgreSQL; the TOTP replay cache and the throttles
also in Redis."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.models import Account, AuditEvent
from idp.models_base import utcnow
from idp.oidc.discovery import TOKEN_EXCHANGE
from idp.oidc.models import ACR_MFA, token_digest
from idp.second_factor import factors
from idp.second_factor.mfa_tokens import MAX_ATTEMPTS
from idp.second_factor.models import MfaChallenge, RecoveryCode, SecondFactor, SecondFactorKind
from idp.second_factor.recovery_codes import new_recovery_codes, remaining_recovery_codes
from idp.wechat.fake import FakeWeChatControl
from idp.wechat_login.mfa import MFA_TOKEN_TYPE
from tests.oidc.helpers import id_token_claims
from tests.redis_db import redis_url

from .conftest import MINI_APPID, OTHER_MINI_APPID, bind_phone, exchange, mini_login

PAPE_MULTI_FACTOR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
REDIS_URL = redis_url(12)


def _redis_reason() -> str | None:
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1) as connection:
            connection.ping()
    except Exception as error:  # noqa: BLE001
        return f"Redis not reachable at IDP_TEST_REDIS_URL ({type(error).__name__})"
    return None


# --- helpers -------------------------------------------------------------------------------------


def account_of(browser: FlaskClient, tokens: dict[str, Any]) -> Account:
    account = db.session.get(Account, id_token_claims(browser, tokens["id_token"])["sub"])
    assert account is not None
    return account


def enrol_totp(account: Account, recovery_codes: bool = True) -> tuple[pyotp.TOTP, list[str]]:
    """What the account centre does once the user proved the app's first code."""
    secret = pyotp.random_base32()
    factors.add_totp(account, secret, "Authenticator app")
    codes = new_recovery_codes(account) if recovery_codes else []
    db.session.commit()
    return pyotp.TOTP(secret), codes


def enrol_passkey_only(account: Account) -> None:
    db.session.add(SecondFactor(
        account_id=account.id, kind=SecondFactorKind.WEBAUTHN, label="Passkey",
        credential_id="cred-" + account.id, public_key=b"\x01", device_type="multi_device",
        created_at=utcnow(),
    ))
    db.session.commit()


def code_now(totp: pyotp.TOTP) -> str:
    return totp.now()


def next_code(totp: pyotp.TOTP) -> str:
    """The next time step's code: another code than `code_now`'s, accepted within the drift."""
    return totp.at(int(time.time()) + 30)


def second_step(browser: FlaskClient, client: Any, mfa_token: str, **extra: Any) -> Any:
    return exchange(browser, client, mfa_token,
                    **{"subject_token_type": MFA_TOKEN_TYPE, "scope": None, **extra})


def mfa_required(
    browser: FlaskClient, control: FakeWeChatControl, client: Any, user: str, **extra: Any
) -> dict[str, Any]:
    issued = control.issue_js_code(client.wechat_appid, user=user)
    response = exchange(browser, client, issued.code, **extra)
    assert response.status_code == 403, response.get_json()
    body = dict(response.get_json())
    assert body["error"] == "mfa_required"
    return body


def attempts_of(mfa_token: str) -> int:
    db.session.expire_all()
    challenge = db.session.get(MfaChallenge, token_digest(mfa_token))
    assert challenge is not None
    return challenge.attempts


@pytest.fixture
def strict_mini(make_client: Any, wechat_apps: None) -> Any:
    """A mini-program client that requires a second factor (`idp clients create --require-mfa`)."""
    client, _ = make_client(
        name="Strict mini", public=True, wechat_appid=MINI_APPID,
        grant_types=[TOKEN_EXCHANGE, "refresh_token"], require_mfa=True,
    )
    return client


@pytest.fixture
def alice(client: FlaskClient, control: FakeWeChatControl, mini_client: Any) -> Account:
    """A mini-program user whose account exists (first sign-in, no factor yet)."""
    return account_of(client, mini_login(client, control, mini_client, "alice"))


@pytest.fixture
def alice_totp(alice: Account) -> tuple[pyotp.TOTP, list[str]]:
    return enrol_totp(alice)


# --- step one: mfa_required ---------------------------------------------------------------------


def test_required_mfa_with_a_factor_is_mfa_required_and_no_tokens__rfc6749_5_2(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any,
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    response = exchange(client, strict_mini, issued.code)
    assert response.status_code == 403
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["error"] == "mfa_required" and body["error_description"]
    assert body["factors"] == ["otp", "recovery_code"]
    assert not {"access_token", "id_token", "refresh_token"} & set(body)
    token = body["mfa_token"]
    assert len(token) >= 43
    stored = db.session.scalars(sa.select(MfaChallenge)).one()
    assert stored.token_digest == token_digest(token) != token  # kept hashed
    assert (stored.client_id, stored.account_id) == (strict_mini.client_id, alice.id)
    lifetime = stored.expires_at - stored.created_at
    assert lifetime == timedelta(minutes=5)


def test_an_account_with_a_factor_is_asked_whatever_the_client__as_on_the_website(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, alice: Account,
    alice_totp: Any,
) -> None:
    body = mfa_required(client, control, mini_client, "alice")
    assert body["factors"] == ["otp", "recovery_code"]


def test_factors_offered_are_those_a_mini_program_can_use(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, alice: Account,
) -> None:
    enrol_totp(alice, recovery_codes=False)
    assert mfa_required(client, control, mini_client, "alice")["factors"] == ["otp"]
    bob = account_of(client, mini_login(client, control, mini_client, "bob"))
    enrol_passkey_only(bob)
    new_recovery_codes(bob)
    db.session.commit()
    assert mfa_required(client, control, mini_client, "bob")["factors"] == ["recovery_code"]


# --- step two: the code --------------------------------------------------------------------------


def test_totp_completes_the_exchange_with_amr_otp_mfa_and_the_mfa_acr__rfc8693_2_2_1_rfc8176_2(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any,
) -> None:
    totp, _ = alice_totp
    token = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    response = second_step(client, strict_mini, token, otp=code_now(totp))
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    tokens = response.get_json()
    assert tokens["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert tokens["scope"] == "openid profile phone wechat offline_access"
    assert tokens["refresh_token"]
    claims = id_token_claims(client, tokens["id_token"])
    assert claims["sub"] == alice.id
    assert claims["amr"] == ["wechat", "otp", "mfa"]
    assert claims["acr"] == ACR_MFA
    assert claims["aud"] == [strict_mini.client_id] and "nonce" not in claims
    audit = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "session.second_factor")
    ).one()
    assert (audit.account_id, audit.reason) == (alice.id, "otp")


def test_refresh_keeps_amr_and_acr_of_the_mfa_exchange__rfc6749_6_oidc_core_12_2(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any,
) -> None:
    totp, _ = alice_totp
    token = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    tokens = second_step(client, strict_mini, token, otp=code_now(totp)).get_json()
    refreshed = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": strict_mini.client_id,
        "refresh_token": tokens["refresh_token"],
    })
    assert refreshed.status_code == 200, refreshed.get_json()
    claims = id_token_claims(client, refreshed.get_json()["id_token"])
    assert claims["amr"] == ["wechat", "otp", "mfa"] and claims["acr"] == ACR_MFA


def test_recovery_code_completes_the_exchange_and_is_spent(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any,
) -> None:
    _totp, codes = alice_totp
    token = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    response = second_step(client, strict_mini, token, recovery_code=codes[0])
    assert response.status_code == 200, response.get_json()
    claims = id_token_claims(client, response.get_json()["id_token"])
    assert claims["amr"] == ["wechat", "otp", "mfa"] and claims["acr"] == ACR_MFA
    db.session.expire_all()
    assert remaining_recovery_codes(alice) == len(codes) - 1
    spent = db.session.scalars(
        sa.select(RecoveryCode).where(RecoveryCode.used_at.is_not(None))
    ).one()
    assert spent.code_digest != codes[0]

    again = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    reused = second_step(client, strict_mini, again, recovery_code=codes[0])
    assert (reused.status_code, reused.get_json()["error"]) == (400, "invalid_grant")


def test_narrower_scope_may_be_asked_in_the_second_step_but_not_a_wider__rfc6749_6(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any,
) -> None:
    totp, _ = alice_totp
    token = mfa_required(client, control, strict_mini, "alice", scope="openid phone")["mfa_token"]
    wider = second_step(client, strict_mini, token, otp=code_now(totp), scope="openid email")
    assert (wider.status_code, wider.get_json()["error"]) == (400, "invalid_scope")
    narrower = second_step(client, strict_mini, token, otp=next_code(totp), scope="openid")
    assert narrower.status_code == 200, narrower.get_json()
    assert narrower.get_json()["scope"] == "openid" and "refresh_token" not in narrower.get_json()


# --- refusals ------------------------------------------------------------------------------------


def test_wrong_code_is_invalid_grant_and_the_mfa_token_dies_after_the_last_attempt__rfc6749_5_2(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any,
) -> None:
    totp, _ = alice_totp
    right = code_now(totp)
    wrong = "000000" if right != "000000" else "111111"
    token = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    for attempt in range(1, MAX_ATTEMPTS + 1):
        response = second_step(client, strict_mini, token, otp=wrong)
        assert response.status_code == 400
        body = response.get_json()
        assert body["error"] == "invalid_grant"
        assert body["attempts_left"] == MAX_ATTEMPTS - attempt
        assert "access_token" not in body
    dead = second_step(client, strict_mini, token, otp=right)
    assert (dead.status_code, dead.get_json()["error"]) == (400, "invalid_grant")
    assert "attempts_left" not in dead.get_json()


def test_replayed_mfa_token_is_invalid_grant__rfc6749_5_2(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any,
) -> None:
    totp, codes = alice_totp
    token = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    assert second_step(client, strict_mini, token, otp=code_now(totp)).status_code == 200
    replay = second_step(client, strict_mini, token, recovery_code=codes[1])
    assert (replay.status_code, replay.get_json()["error"]) == (400, "invalid_grant")
    db.session.expire_all()
    assert remaining_recovery_codes(alice) == len(codes)  # nothing spent on a dead token


def test_mfa_token_of_another_client_is_invalid_grant__rfc6749_5_2(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, other_mini_client: Any,
    alice: Account, alice_totp: Any,
) -> None:
    totp, _ = alice_totp
    token = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    stolen = second_step(client, other_mini_client, token, otp=code_now(totp))
    assert (stolen.status_code, stolen.get_json()["error"]) == (400, "invalid_grant")
    assert attempts_of(token) == 0  # the other client cannot even spend its attempts
    assert second_step(client, strict_mini, token, otp=code_now(totp)).status_code == 200
    assert other_mini_client.wechat_appid == OTHER_MINI_APPID


def test_expired_mfa_token_is_invalid_grant__rfc6749_5_2(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any,
) -> None:
    totp, _ = alice_totp
    token = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    challenge = db.session.get(MfaChallenge, token_digest(token))
    assert challenge is not None
    challenge.expires_at = utcnow() - timedelta(seconds=1)  # five minutes later
    db.session.commit()
    response = second_step(client, strict_mini, token, otp=code_now(totp))
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_grant")


def test_unknown_mfa_token_is_invalid_grant(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any,
) -> None:
    response = second_step(client, strict_mini, "not-a-token-we-issued", otp="123456")
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_grant")


def test_disabled_account_cannot_finish_the_exchange(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any,
) -> None:
    totp, _ = alice_totp
    token = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    alice.status = "disabled"
    db.session.commit()
    response = second_step(client, strict_mini, token, otp=code_now(totp))
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_grant")


def test_mfa_token_and_codes_never_reach_a_log_line(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    totp, codes = alice_totp
    code = code_now(totp)
    first = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    second_step(client, strict_mini, first, otp="000000" if code != "000000" else "111111")
    second_step(client, strict_mini, first, otp=code)
    second = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    second_step(client, strict_mini, second, recovery_code=codes[2])
    for value in (first, second, code, codes[2]):
        assert value not in caplog.text
        for record in caplog.records:
            assert value not in str(record.args) and value not in record.getMessage()


# --- unmet requirements and acr_values ----------------------------------------------------------


def test_required_mfa_without_a_factor_is_unmet_authentication_requirements(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    response = exchange(client, strict_mini, issued.code)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "unmet_authentication_requirements"
    assert "access_token" not in body and "mfa_token" not in body
    assert db.session.scalars(sa.select(MfaChallenge)).all() == []


def test_passkey_only_account_cannot_sign_in_with_wechat_alone(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, alice: Account,
) -> None:
    """Passkeys do not work in a mini-program, and the website would ask for one: refused,
    with a description saying how to fix it."""
    enrol_passkey_only(alice)
    issued = control.issue_js_code(MINI_APPID, user="alice")
    response = exchange(client, mini_client, issued.code)
    body = response.get_json()
    assert (response.status_code, body["error"]) == (400, "unmet_authentication_requirements")
    assert "mini-program" in body["error_description"]


def test_no_factor_and_not_required_gives_tokens_as_before(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, alice: Account,
) -> None:
    tokens = mini_login(client, control, mini_client, "alice")
    claims = id_token_claims(client, tokens["id_token"])
    assert claims["amr"] == ["wechat"] and "acr" not in claims


@pytest.mark.parametrize("acr_values", [ACR_MFA, f"urn:other {PAPE_MULTI_FACTOR}"])
def test_acr_values_on_the_token_request_require_mfa__oidc_core_3_1_2_1(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, alice: Account,
    acr_values: str,
) -> None:
    issued = control.issue_js_code(MINI_APPID, user="alice")
    unmet = exchange(client, mini_client, issued.code, acr_values=acr_values)
    assert unmet.get_json()["error"] == "unmet_authentication_requirements"

    totp, _ = enrol_totp(alice)
    token = mfa_required(client, control, mini_client, "alice", acr_values=acr_values)
    done = second_step(client, mini_client, token["mfa_token"], otp=code_now(totp))
    assert id_token_claims(client, done.get_json()["id_token"])["acr"] == ACR_MFA


def test_other_acr_values_do_not_require_mfa(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, alice: Account,
) -> None:
    tokens = mini_login(client, control, mini_client, "alice", acr_values="urn:other:acr")
    assert id_token_claims(client, tokens["id_token"])["amr"] == ["wechat"]


# --- hostile input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"otp": "12\x003456"},
        {"otp": "1" * 5000},
        {"otp": "12345a"},
        {"otp": "１２３４５６"},  # fullwidth digits: isdigit() says yes, TOTP says no
        {"recovery_code": "x" * 200},
        {"recovery_code": "abc\x00de"},
        {"otp": "123456", "recovery_code": "abcde-12345"},
        {},
        {"subject_token": "t" * 500},
        {"subject_token": "to\x00ken"},
        {"requested_token_type": "urn:ietf:params:oauth:token-type:id_token"},
        {"actor_token": "a", "actor_token_type": "b"},
    ],
    ids=["nul-otp", "long-otp", "letter-otp", "fullwidth-otp", "long-recovery", "nul-recovery",
         "both-codes", "no-code", "long-token", "nul-token", "id-token-type", "actor"],
)
def test_malformed_second_step_is_400_and_costs_no_attempt__rfc8693_2_1(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any, extra: dict[str, Any],
) -> None:
    token = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    data = dict(extra)
    presented = data.pop("subject_token", token)
    response = second_step(client, strict_mini, presented, **data)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"] == "invalid_request"
    assert attempts_of(token) == 0


@pytest.mark.parametrize(
    "repeated", ["otp", "subject_token", "subject_token_type", "client_id", "scope", "acr_values"]
)
def test_repeated_parameters_are_invalid_request__rfc6749_3_2(
    client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
    alice_totp: Any, repeated: str,
) -> None:
    totp, _ = alice_totp
    token = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
    data: dict[str, Any] = {
        "grant_type": TOKEN_EXCHANGE, "client_id": strict_mini.client_id,
        "subject_token": token, "subject_token_type": MFA_TOKEN_TYPE, "otp": code_now(totp),
        "scope": "openid", "acr_values": ACR_MFA,
    }
    data[repeated] = [data[repeated], data[repeated]]
    response = client.post("/oauth/token", data=data)
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_request")
    assert attempts_of(token) == 0


@pytest.mark.parametrize(
    "extra",
    [
        {"acr_values": "a" * 600},
        {"acr_values": "urn:idp:acr:mfa\x00"},
        {"acr_values": ["urn:idp:acr:mfa", "urn:other"]},
        {"otp": "123456"},
    ],
    ids=["long-acr", "nul-acr", "repeated-acr", "otp-with-js-code"],
)
def test_malformed_first_step_is_400_before_calling_wechat__rfc8693_2_1(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, extra: dict[str, Any],
) -> None:
    response = exchange(client, mini_client, "code", **extra)
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_request")
    assert control.calls("/sns/jscode2session") == []


# --- one-time codes and throttles, in the database and in Redis --------------------------------


class TestOneTimeCodesAndThrottles:
    """Replay cache and throttles in the database (and the throttle file), or in Redis, shared
    by every IdP process."""

    @pytest.fixture(params=["database", "redis"])
    def app_config(
        self, request: pytest.FixtureRequest, app_config: dict[str, Any]
    ) -> dict[str, Any]:
        """Replay cache and throttles in the database (and the throttle file), or in Redis."""
        if request.param == "redis":
            reason = _redis_reason()
            if reason:
                pytest.skip(reason)
            app_config["IDP_REDIS_URL"] = REDIS_URL
        return app_config

    def test_totp_code_is_not_accepted_twice__rfc6238_5_2(
        self, client: FlaskClient, control: FakeWeChatControl, strict_mini: Any, alice: Account,
        alice_totp: Any,
    ) -> None:
        totp, _ = alice_totp
        code = code_now(totp)
        first = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
        assert second_step(client, strict_mini, first, otp=code).status_code == 200
        second = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
        replay = second_step(client, strict_mini, second, otp=code)
        assert (replay.status_code, replay.get_json()["error"]) == (400, "invalid_grant")
        assert second_step(client, strict_mini, second, otp=next_code(totp)).status_code == 200

    def test_second_factor_attempts_are_throttled_per_account_across_mfa_tokens(
        self, app: Flask, client: FlaskClient, control: FakeWeChatControl, strict_mini: Any,
        alice: Account, alice_totp: Any,
    ) -> None:
        """The website's second-factor throttle (5 per 5 minutes) counts these attempts too: fresh
        mfa_tokens do not buy fresh guesses."""
        app.config["IDP_THROTTLE_ENABLED"] = True
        totp, _ = alice_totp
        wrong = "000000" if code_now(totp) != "000000" else "111111"
        first = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
        for _ in range(3):
            assert second_step(client, strict_mini, first, otp=wrong).status_code == 400
        second = mfa_required(client, control, strict_mini, "alice")["mfa_token"]
        for _ in range(2):
            assert second_step(client, strict_mini, second, otp=wrong).status_code == 400
        throttled = second_step(client, strict_mini, second, otp=code_now(totp))
        assert throttled.status_code == 429
        assert throttled.get_json()["error"] == "temporarily_unavailable"
        assert int(throttled.headers["Retry-After"]) > 0


# --- phone binding (CONTRACT §6) that merges into an account with a second factor --------------


def test_binding_into_an_account_with_a_factor_asks_for_it__rfc9068_2_2_3_1(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, make_user: Any
) -> None:
    """The phone is proven, so the merge happens; but the survivor's tokens need its factor:
    the answer is mfa_required, completed at the token endpoint with the survivor's TOTP."""
    website_account = make_user(phone="+8613800138077")
    totp, _ = enrol_totp(website_account)
    website_id = website_account.id
    tokens = mini_login(client, control, mini_client, "carol")
    code = control.issue_phone_code(mini_client.wechat_appid, "13800138077")
    answer = bind_phone(client, tokens["access_token"], {"code": code})
    assert answer.status_code == 403, answer.get_json()
    body = answer.get_json()
    assert body["error"] == "mfa_required" and "access_token" not in body
    assert "otp" in body["factors"]
    db.session.expire_all()
    merged = db.session.get(Account, id_token_claims(client, tokens["id_token"])["sub"])
    assert merged is not None and merged.merged_into_id == website_id
    done = second_step(client, mini_client, body["mfa_token"], otp=code_now(totp))
    assert done.status_code == 200, done.get_json()
    claims = id_token_claims(client, done.get_json()["id_token"])
    assert claims["sub"] == website_id and "mfa" in claims["amr"]


def test_binding_after_an_mfa_sign_in_keeps_the_factors__rfc8176_2(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, alice: Account,
    alice_totp: Any,
) -> None:
    totp, _ = alice_totp
    token = mfa_required(client, control, mini_client, "alice")["mfa_token"]
    tokens = second_step(client, mini_client, token, otp=code_now(totp)).get_json()
    assert id_token_claims(client, tokens["access_token"])["amr"] == ["wechat", "otp", "mfa"]
    code = control.issue_phone_code(mini_client.wechat_appid, "13800138078")
    answer = bind_phone(client, tokens["access_token"], {"code": code})
    assert answer.status_code == 200, answer.get_json()
    assert "mfa" in id_token_claims(client, answer.get_json()["id_token"])["amr"]
