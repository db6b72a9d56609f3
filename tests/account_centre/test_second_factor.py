"""TOTP (RFC 6238) as a second step after the first factor, recovery codes (shown once, stored
hashed), and `amr` (RFC 8176 §2: `otp`, `mfa`) in the ID token."""

from __future__ import annotations

import re
from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from sqlalchemy import select

from idp.extensions import db
from idp.identity.models import AuditEvent
from idp.second_factor.models import RecoveryCode, SecondFactor
from tests.account_centre.conftest import post_form
from tests.conftest import CodeFlow, login

PHONE = "+8613800138000"


def _enrol(browser: FlaskClient) -> tuple[str, list[str]]:
    page = browser.get("/account/two-factor/totp").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    done = post_form(browser, "/account/two-factor/totp", code=pyotp.TOTP(secret).now())
    assert done.status_code == 200
    codes = re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", done.get_data(as_text=True))
    return secret, codes


def _claims(id_token: str) -> dict[str, Any]:
    return jwt.decode(id_token, _any_key()).claims


def _any_key() -> Any:
    from flask import current_app

    return current_app.extensions["idp_keyring"].verification_keys()


def test_enrol_totp_shows_recovery_codes_once_and_stores_them_hashed(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    _secret, codes = _enrol(signed_in)
    assert len(codes) == 10
    stored = db.session.scalars(select(RecoveryCode.code_digest)).all()
    assert len(stored) == 10 and not set(codes) & set(stored)
    assert not any(code.replace("-", "") in digest for code in codes for digest in stored)
    factor = db.session.scalars(select(SecondFactor)).one()
    assert factor.kind == "totp" and _secret not in (factor.secret_encrypted or "")
    page = signed_in.get("/account/two-factor").get_data(as_text=True)
    assert codes[0] not in page


def test_sign_in_asks_for_totp_after_password_and_amr_says_so__rfc8176(
    app: Flask, signed_in: FlaskClient, user: Any, website: Any
) -> None:
    secret, _codes = _enrol(signed_in)
    browser = app.test_client()
    assert login(browser, PHONE).status_code == 302
    detour = browser.get("/account/sessions")
    assert detour.status_code == 302 and "/account/second-factor" in detour.headers["Location"]
    flow = CodeFlow(browser, website[0], website[1])
    authorize = flow.authorize()
    assert authorize.status_code == 302 and "/account/second-factor" in authorize.headers[
        "Location"]
    wrong = post_form(browser, authorize.headers["Location"], **{
        "totp-csrf_token": "", "totp-code": "000000", "action": "totp"})
    assert wrong.status_code == 200 and "not right" in wrong.get_data(as_text=True)
    totp = pyotp.TOTP(secret)
    code = totp.at(int(__import__("time").time()) + 30)  # the next step: not used at enrolment
    right = post_form(browser, authorize.headers["Location"], **{
        "totp-csrf_token": "", "totp-code": code, "action": "totp"})
    assert right.status_code == 302 and right.headers["Location"].startswith("/oauth/authorize")
    tokens = flow.tokens()
    assert set(_claims(tokens["id_token"])["amr"]) >= {"pwd", "otp", "mfa"}
    replay = app.test_client()
    login(replay, PHONE)
    reused = post_form(replay, "/account/second-factor", **{
        "totp-csrf_token": "", "totp-code": code, "action": "totp"})
    assert "not right" in reused.get_data(as_text=True)  # one code, one use


def test_recovery_code_works_once(app: Flask, signed_in: FlaskClient, user: Any) -> None:
    _secret, codes = _enrol(signed_in)
    first = app.test_client()
    login(first, PHONE)
    used = post_form(first, "/account/second-factor", **{
        "recovery-csrf_token": "", "recovery-code": codes[0], "action": "recovery",
        "next": "/account/sessions"})
    assert used.status_code == 302
    assert first.get("/account/sessions").status_code == 200
    second = app.test_client()
    login(second, PHONE)
    again = post_form(second, "/account/second-factor", **{
        "recovery-csrf_token": "", "recovery-code": codes[0], "action": "recovery"})
    assert again.status_code == 200 and "was used already" in again.get_data(as_text=True)
    assert second.get("/account/sessions").status_code == 302
    assert db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "recovery_code.use")).one()


# Arabic-Indic digits: `str.isdigit` says yes, but `hmac.compare_digest` refuses non-ASCII text.
NON_ASCII_DIGITS = "\u0661\u0662\u0663\u0664\u0665\u0666"


def test_a_code_of_non_ascii_digits_is_a_wrong_code_not_an_error__rfc4226_5_3(
    app: Flask, signed_in: FlaskClient, user: Any
) -> None:
    """RFC 4226 §5.3: the code is a decimal number of ASCII digits; anything else is refused
    like a wrong code, at enrolment and at the second step (never a 500)."""
    signed_in.get("/account/two-factor/totp")
    refused = post_form(signed_in, "/account/two-factor/totp", code=NON_ASCII_DIGITS)
    assert refused.status_code == 200 and "not right" in refused.get_data(as_text=True)
    assert db.session.scalars(select(SecondFactor)).all() == []
    _enrol(signed_in)
    browser = app.test_client()
    login(browser, PHONE)
    step = browser.get("/account/sessions").headers["Location"]
    wrong = post_form(browser, step, **{"totp-csrf_token": "", "totp-code": NON_ASCII_DIGITS,
                                        "action": "totp"})
    assert wrong.status_code == 200 and "not right" in wrong.get_data(as_text=True)


def test_pending_second_factor_signs_nobody_in(app: Flask, signed_in: FlaskClient,
                                               user: Any) -> None:
    _enrol(signed_in)
    browser = app.test_client()
    login(browser, PHONE)
    assert browser.get("/account").status_code == 302
    assert browser.get("/oauth/userinfo").status_code == 401


def test_removing_the_last_factor_drops_recovery_codes(app: Flask, signed_in: FlaskClient,
                                                       user: Any) -> None:
    _enrol(signed_in)
    factor = db.session.scalars(select(SecondFactor)).one()
    response = post_form(signed_in, "/account/two-factor",
                         f"/account/two-factor/{factor.id}/remove")
    assert response.status_code == 303
    assert db.session.scalars(select(RecoveryCode)).all() == []
    browser = app.test_client()
    login(browser, PHONE)
    assert browser.get("/account/sessions").status_code == 200


def test_client_requiring_mfa_steps_up_and_acr_says_so__oidc_core_3_1_2_1(
    app: Flask, signed_in: FlaskClient, user: Any, make_client: Any
) -> None:
    secret, _codes = _enrol(signed_in)
    strict, strict_secret = make_client(name="Bank", require_mfa=True)
    browser = app.test_client()
    login(browser, PHONE)
    post_form(browser, "/account/second-factor", **{
        "totp-csrf_token": "", "totp-code": pyotp.TOTP(secret).at(__import__("time").time() + 30),
        "action": "totp"})
    # A session that already gave its factor goes straight through.
    flow = CodeFlow(browser, strict, strict_secret)
    claims = _claims(flow.tokens()["id_token"])
    assert claims["acr"] == "urn:idp:acr:mfa" and "mfa" in claims["amr"]


def test_acr_values_mfa_steps_up_a_password_session(
    app: Flask, signed_in: FlaskClient, user: Any, website: Any
) -> None:
    from idp.identity.models import LoginSession

    secret, _codes = _enrol(signed_in)  # signed_in's session predates the factor: no mfa
    assert "mfa" not in db.session.scalars(select(LoginSession.amr)).first()
    flow = CodeFlow(signed_in, website[0], website[1])
    response = flow.authorize(acr_values="urn:idp:acr:mfa")
    assert response.status_code == 302
    assert "/account/second-factor" in response.headers["Location"]
    done = post_form(signed_in, response.headers["Location"], **{
        "totp-csrf_token": "", "totp-code": pyotp.TOTP(secret).at(__import__("time").time() + 30),
        "action": "totp"})
    assert done.status_code == 302 and "/oauth/authorize" in done.headers["Location"]
    tokens = flow.tokens(acr_values="urn:idp:acr:mfa")
    assert _claims(tokens["id_token"])["acr"] == "urn:idp:acr:mfa"


def test_mfa_required_without_a_factor_is_unmet_authentication_requirements(
    app: Flask, signed_in: FlaskClient, make_client: Any
) -> None:
    from tests.conftest import query_of

    strict, strict_secret = make_client(name="Bank", require_mfa=True)
    response = CodeFlow(signed_in, strict, strict_secret).authorize()
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["error"] == "unmet_authentication_requirements"
