"""Secrets at rest: AES-256-GCM under a versioned key.

`IDP_ENCRYPTION_KEY` holds one key, or several separated by commas: the first encrypts, every one
decrypts, so a new key can be put in front and `idp keys rotate-encryption` re-encrypts the rest.
A ciphertext names the key that made it: `<key id>.<base64url(nonce || ciphertext)>`. The same
keys make keyed tags (`SecretBox.tags`, HMAC-SHA-512 under a key derived apart): secrets only
the IdP can derive from a value, and marks only it can put on one (`idp.oidc.refresh_tokens`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class DecryptionError(ValueError):
    """The ciphertext is damaged or was made with a key we no longer hold."""


class SecretBox:
    def __init__(self, key_material: str):
        keys = [part.strip() for part in key_material.split(",") if part.strip()]
        if not keys:
            raise ValueError("IDP_ENCRYPTION_KEY is empty")
        self._keys: dict[str, AESGCM] = {}
        self._tag_keys: dict[str, bytes] = {}
        self.current_key_id = ""
        for material in keys:
            # Derive a fixed-size key from whatever string the operator supplied.
            raw = hashlib.sha256(b"idp-secret-box\x00" + material.encode()).digest()
            key_id = hashlib.sha256(b"idp-key-id\x00" + raw).hexdigest()[:8]
            self._keys.setdefault(key_id, AESGCM(raw))
            self._tag_keys.setdefault(key_id, hashlib.sha256(b"idp-tag\x00" + raw).digest())
            self.current_key_id = self.current_key_id or key_id

    def encrypt(self, plaintext: str | bytes, context: str = "") -> str:
        """`context` binds the ciphertext to its use (e.g. the row it belongs to)."""
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        nonce = os.urandom(12)
        sealed = self._keys[self.current_key_id].encrypt(nonce, data, context.encode())
        return f"{self.current_key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt_bytes(self, token: str, context: str = "") -> bytes:
        key_id, _, body = token.partition(".")
        aead = self._keys.get(key_id)
        if aead is None:
            raise DecryptionError(f"no encryption key with id {key_id!r} is configured")
        try:
            blob = base64.urlsafe_b64decode(body.encode())
            return aead.decrypt(blob[:12], blob[12:], context.encode())
        except (InvalidTag, ValueError) as error:
            raise DecryptionError("ciphertext failed authentication") from error

    def decrypt(self, token: str, context: str = "") -> str:
        return self.decrypt_bytes(token, context).decode()

    def tags(self, value: str, purpose: str) -> list[bytes]:
        """HMAC-SHA-512 of `value` for `purpose` under each key, the current key's first: what
        only a holder of the key can compute from `value` (a secret derived from a secret).
        The other keys' tags recognise what the current key's predecessor computed."""
        message = purpose.encode() + b"\x00" + value.encode()
        current = self._tag_keys[self.current_key_id]
        return [hmac.digest(key, message, "sha512")  # OpenSSL's one-shot HMAC
                for key in (current, *(k for k in self._tag_keys.values() if k is not current))]

    def needs_reencryption(self, token: str) -> bool:
        return not token.startswith(self.current_key_id + ".")

    def reencrypt(self, token: str, context: str = "") -> str:
        return self.encrypt(self.decrypt_bytes(token, context), context)


def digest(value: str) -> str:
    """SHA-256 hex of a high-entropy token (codes, refresh tokens, client secrets)."""
    return hashlib.sha256(value.encode()).hexdigest()
