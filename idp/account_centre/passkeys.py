"""Passkeys and security keys as a second factor (WebAuthn Level 2), with Duo Labs' `webauthn`
library: it verifies attestation and assertion (challenge, origin, RP ID, signature, counters)
so that none of that is hand-written here. Chosen over Yubico's `python-fido2` because only the
relying-party side is needed and its API is exactly those four calls.

The relying party is the issuer: RP ID = its host (IDP_WEBAUTHN_RP_ID to override), expected
origin = its origin. Browsers refuse IP addresses as RP IDs, so on the default development
issuer (http://127.0.0.1:5000) passkeys need http://localhost:5000 instead (README).
A synced passkey (backup eligible, `multi_device`) is amr `swk`, a device-bound key `hwk`
(RFC 8176 §2): both then add `mfa`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, jsonify, request, session, url_for
from flask_babel import gettext as _
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.account_centre.blueprint import bp, fresh_auth, me, signed_in
from idp.account_centre.second_factor import complete_second_factor
from idp.account_centre.sign_out_elsewhere import offer_after_enrolment
from idp.accounts import second_factors as factors
from idp.accounts.models import SecondFactor, SecondFactorKind
from idp.accounts.sessions import session_awaiting_second_factor
from idp.accounts.views import safe_next
from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.security.throttle import Throttled

REGISTRATION_CHALLENGE = "webauthn_registration_challenge"
AUTHENTICATION_CHALLENGE = "webauthn_authentication_challenge"
MAX_CREDENTIAL_JSON = 16 * 1024


def relying_party() -> tuple[str, str]:
    """(RP ID, expected origin), both from configuration, never from the request's Host."""
    issuer = urlsplit(current_app.config["IDP_ISSUER"])
    rp_id = current_app.config.get("IDP_WEBAUTHN_RP_ID") or issuer.hostname or ""
    return rp_id, f"{issuer.scheme}://{issuer.netloc}"


def _credentials(account: Account) -> list[SecondFactor]:
    return [f for f in factors.factors_of(account)
            if f.kind == SecondFactorKind.WEBAUTHN and f.credential_id]


def _descriptors(account: Account) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(f.credential_id or ""))
            for f in _credentials(account)]


def _credential_json() -> str:
    body = request.get_data(as_text=True)
    if not body or len(body) > MAX_CREDENTIAL_JSON:
        abort(400)
    try:
        parsed = json.loads(body)
    except ValueError:
        abort(400)
    if not isinstance(parsed, dict):
        abort(400)
    return body


def _json_options(options: Any) -> Any:
    response = current_app.response_class(options_to_json(options), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


# --- enrolment -----------------------------------------------------------------------------------


@bp.post("/two-factor/passkey/options")
@signed_in
@fresh_auth(back="account_centre.two_factor")
def passkey_registration_options() -> Any:
    account = me()
    rp_id, _origin = relying_party()
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name="IdP",
        user_id=account.id.encode(),
        user_name=account.id[:8],
        user_display_name=_("Your account"),
        exclude_credentials=_descriptors(account),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    session[REGISTRATION_CHALLENGE] = bytes_to_base64url(options.challenge)
    return _json_options(options)


@bp.post("/two-factor/passkey")
@signed_in
@fresh_auth(back="account_centre.two_factor")
def passkey_register() -> Any:
    account = me()
    challenge = session.pop(REGISTRATION_CHALLENGE, None)
    if not isinstance(challenge, str):
        return jsonify(error=_("Start again: the request expired.")), 400
    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(
            credential=_credential_json(), expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id, expected_origin=origin,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        # Whatever the library found wrong (structure, CBOR, signature…): a refusal, not a 500.
        return jsonify(error=_("The passkey could not be added.")), 400
    first = not factors.factors_of(account)
    db.session.add(SecondFactor(
        account_id=account.id, kind=SecondFactorKind.WEBAUTHN, label=_("Passkey"),
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        device_type=str(verified.credential_device_type.value), created_at=utcnow(),
    ))
    audit.record("second_factor.add", Actor.user(account.id), account.id, reason="webauthn",
                 kind=SecondFactorKind.WEBAUTHN, device_type=verified.credential_device_type.value)
    codes = factors.new_recovery_codes(account) if first else []
    db.session.commit()
    offer_after_enrolment()
    return jsonify(ok=True, recovery_codes=codes,
                   next=url_for("account_centre.two_factor")), 201


# --- the second step ---------------------------------------------------------------------------


@bp.post("/second-factor/passkey/options")
def second_factor_passkey_options() -> Any:
    row = session_awaiting_second_factor()
    account = db.session.get(Account, row.account_id) if row else None
    if account is None or not _credentials(account):
        abort(404)
    rp_id, _origin = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id, allow_credentials=_descriptors(account),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    session[AUTHENTICATION_CHALLENGE] = bytes_to_base64url(options.challenge)
    return _json_options(options)


@bp.post("/second-factor/passkey")
def second_factor_passkey() -> Any:
    row = session_awaiting_second_factor()
    account = db.session.get(Account, row.account_id) if row else None
    challenge = session.pop(AUTHENTICATION_CHALLENGE, None)
    if row is None or account is None or not isinstance(challenge, str):
        return jsonify(error=_("Start again: the request expired.")), 400
    try:
        factors.attempts_by_account.check(account.id)
    except Throttled:
        return jsonify(error=_("Too many attempts. Please wait a few minutes.")), 429
    body = _credential_json()
    credential_id = str(json.loads(body).get("id", ""))[:255]
    factor = next((f for f in _credentials(account) if f.credential_id == credential_id), None)
    rp_id, origin = relying_party()
    try:
        if factor is None or factor.public_key is None:
            raise InvalidAuthenticationResponse("not a credential of this account")
        verified = verify_authentication_response(
            credential=body, expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=factor.public_key,
            credential_current_sign_count=factor.sign_count,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        factors.attempts_by_account.hit(account.id)
        db.session.commit()
        return jsonify(error=_("The passkey did not work. Try again or use another way.")), 400
    factor.sign_count = verified.new_sign_count
    factor.last_used_at = utcnow()
    synced = verified.credential_device_type.value == "multi_device"
    complete_second_factor(row, "swk" if synced else "hwk")
    target = safe_next(request.args.get("next"))
    return jsonify(ok=True, next=target)
