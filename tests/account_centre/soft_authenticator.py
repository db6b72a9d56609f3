"""A WebAuthn authenticator in software, for the tests that enrol a passkey without a browser:
a P-256 key pair and the bytes a browser would send (WebAuthn Level 2 §6.1 authenticator data,
§6.5.2 the "none" attestation, §5.8.1 client data), checked by the real `webauthn` library on
the IdP's side. The Chromium tests use the browser's own virtual authenticator instead."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

FLAGS_UP_UV_AT = 0x01 | 0x04 | 0x40  # user present, user verified, attested credential data


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftAuthenticator:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)

    def _cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def registration(self, options: dict[str, Any], origin: str) -> dict[str, Any]:
        """The credential `navigator.credentials.create()` would give for these options."""
        rp_id = options["rp"]["id"]
        attested = (bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id
                    + self._cose_public_key())
        auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([FLAGS_UP_UV_AT])
                     + struct.pack(">I", 0) + attested)
        client_data = json.dumps({"type": "webauthn.create", "challenge": options["challenge"],
                                  "origin": origin, "crossOrigin": False}).encode()
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(self.credential_id), "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data),
                         "attestationObject": b64url(attestation), "transports": ["internal"]},
        }
