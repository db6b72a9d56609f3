"""Passkeys and security keys as a second factor (WebAuthn Level 2), with Duo Labs' `webauthn`
library: it verifies attestation and assertion (challenge, origin, RP ID, signature, counters)
so that none of that is hand-written here. Chosen over Yubico's `python-fido2` because only the
relying-party side is needed and its API is exactly those four calls. The pages that run the
ceremonies in the browser are `idp.account_centre.passkeys`; they keep each challenge in the
session between the options and the answer.

The relying party is the issuer: RP ID = its host (IDP_WEBAUTHN_RP_ID to override), expected
origin = its origin. Browsers refuse IP addresses as RP IDs, so on the default development
issuer (http://127.0.0.1:5000) passkeys need http://localhost:5000 instead (README).
A synced passkey (backup eligible, `multi_device`) is amr `swk`, a device-bound key `hwk`
(RFC 8176 §2): both then add `mfa`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import current_app

from idp.extensions import db
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.second_factor.factors import factors_of
from idp.second_factor.models import SecondFactor, SecondFactorKind

if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

# `webauthn` (~0.1 s of start-up: its attestation formats build ASN.1 specs) is imported by the
# ceremonies that use it, not by every process that registers the account pages.


def _refused() -> tuple[type[Exception], ...]:
    """Whatever the library finds wrong in a browser's answer (structure, CBOR, signature…): a
    refusal, never a 500."""
    from webauthn.helpers.exceptions import WebAuthnException

    return (WebAuthnException, ValueError, TypeError, KeyError, AttributeError)


def relying_party() -> tuple[str, str]:
    """(RP ID, expected origin), both from configuration, never from the request's Host."""
    issuer = urlsplit(current_app.config["IDP_ISSUER"])
    rp_id = current_app.config.get("IDP_WEBAUTHN_RP_ID") or issuer.hostname or ""
    return rp_id, f"{issuer.scheme}://{issuer.netloc}"


def credentials_of(account: Account) -> list[SecondFactor]:
    return [f for f in factors_of(account)
            if f.kind == SecondFactorKind.WEBAUTHN and f.credential_id]


def _descriptors(account: Account) -> list[PublicKeyCredentialDescriptor]:
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(f.credential_id or ""))
            for f in credentials_of(account)]


# --- registration ------------------------------------------------------------------------------


def registration_options(account: Account, display_name: str) -> tuple[str, str]:
    """(the options as JSON for `navigator.credentials.create`, the challenge to keep until the
    answer, base64url)."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers import bytes_to_base64url
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    rp_id, _origin = relying_party()
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name="IdP",
        user_id=account.id.encode(),
        user_name=account.id[:8],
        user_display_name=display_name,
        exclude_credentials=_descriptors(account),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


def register(account: Account, credential_json: str, challenge: str,
             label: str) -> SecondFactor | None:
    """Verifies the browser's attestation against the challenge and stores the credential; None
    when it does not verify. The caller commits."""
    from webauthn import verify_registration_response
    from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(
            credential=credential_json, expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id, expected_origin=origin,
        )
    except _refused():
        return None
    factor = SecondFactor(
        account_id=account.id, kind=SecondFactorKind.WEBAUTHN, label=label,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        device_type=str(verified.credential_device_type.value), created_at=utcnow(),
    )
    db.session.add(factor)
    audit.record("second_factor.add", Actor.user(account.id), account.id, reason="webauthn",
                 kind=SecondFactorKind.WEBAUTHN, device_type=verified.credential_device_type.value)
    return factor


# --- authentication ----------------------------------------------------------------------------


def authentication_options(account: Account) -> tuple[str, str]:
    """(the options as JSON for `navigator.credentials.get`, the challenge to keep, base64url)."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers import bytes_to_base64url
    from webauthn.helpers.structs import UserVerificationRequirement

    rp_id, _origin = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id, allow_credentials=_descriptors(account),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


def verify_assertion(account: Account, credential_json: str, challenge: str) -> str | None:
    """The amr (RFC 8176 §2) the browser's assertion proves — `swk` for a synced passkey, `hwk`
    for a device-bound key — or None when it is not one of the account's credentials or does
    not verify. On success the credential's counter and last use are updated (uncommitted)."""
    from webauthn import verify_authentication_response
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.exceptions import InvalidAuthenticationResponse

    credential_id = str(json.loads(credential_json).get("id", ""))[:255]
    factor = next((f for f in credentials_of(account) if f.credential_id == credential_id), None)
    rp_id, origin = relying_party()
    try:
        if factor is None or factor.public_key is None:
            raise InvalidAuthenticationResponse("not a credential of this account")
        verified = verify_authentication_response(
            credential=credential_json, expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=factor.public_key,
            credential_current_sign_count=factor.sign_count,
        )
    except _refused():
        return None
    factor.sign_count = verified.new_sign_count
    factor.last_used_at = utcnow()
    return "swk" if verified.credential_device_type.value == "multi_device" else "hwk"
