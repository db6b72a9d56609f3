"""Personal data at rest (issue 28, PIPL Art. 51): field encryption and blind indexes.

Phones, emails, WeChat unionids, addresses and birthdates are stored encrypted; what must be
looked up or kept unique (phones, emails, unionids) also gets a blind index, a keyed HMAC of the
normalised value, so that a lookup is one HMAC and an indexed equality.

Both take versioned keys, never from the database: `IDP_DATA_KEYS` and `IDP_BLIND_INDEX_KEYS`
(or their `_FILE` forms), each `version:secret[,version:secret…]`; the first encrypts (or
indexes), every one still reads, so a new key is put in front and `idp keys rotate-data`
rewrites the rest. A ciphertext names its algorithm and key version: `$a3$<base64url(nonce ‖
ciphertext ‖ tag)>` (AES-256-GCM, key 3) or `$s3$…` (SM4-GCM, chosen with
`IDP_DATA_CIPHER=sm4-gcm`); a blind index `h2.<base64url(HMAC-SHA256)[:128 bits]>`.
The secrets at rest of `idp.crypto.SecretBox` (app secrets, signing keys) keep their own key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from idp.crypto import DecryptionError
from idp.errors import ConfigError

CIPHERS = {"aes-256-gcm": "a", "sm4-gcm": "s"}
SEALED = re.compile(r"\$([as])([0-9]{1,6})\$[A-Za-z0-9_-]{38,}={0,2}\Z")
INDEXED = re.compile(r"h([0-9]{1,6})\.[A-Za-z0-9_-]{22}\Z")
NONCE_BYTES = 12
TAG_BYTES = 16
INDEX_BYTES = 16  # 128 bits: no collision among billions of values
EXTENSION = "idp_personal_data"


def parse_versioned_keys(setting: str, name: str) -> list[tuple[int, str]]:
    """`3:secret,2:secret` → [(3, "secret"), (2, "secret")], the current key first."""
    keys: list[tuple[int, str]] = []
    for part in (item.strip() for item in setting.split(",")):
        if not part:
            continue
        version, separator, secret = part.partition(":")
        if not separator or not version.isdigit() or not secret.strip() or int(version) < 1:
            raise ConfigError(f"{name}: each key is 'version:secret' with a version from 1")
        if any(int(version) == known for known, _ in keys):
            raise ConfigError(f"{name}: key version {version} is given twice")
        keys.append((int(version), secret.strip()))
    if not keys:
        raise ConfigError(f"{name} is empty")
    return keys


def _derive(label: bytes, secret: str) -> bytes:
    """A fixed-size key from whatever string the operator supplied."""
    return hashlib.sha256(label + b"\x00" + secret.encode()).digest()


class FieldCipher:
    """Authenticated encryption of one field; `purpose` (the column) is the associated data,
    so a ciphertext copied into another column does not decrypt."""

    def __init__(self, setting: str, algorithm: str = "aes-256-gcm"):
        if algorithm not in CIPHERS:
            raise ConfigError(f"IDP_DATA_CIPHER must be one of {', '.join(CIPHERS)}")
        self._keys = {version: _derive(b"idp-data-key", secret)
                      for version, secret in parse_versioned_keys(setting, "IDP_DATA_KEYS")}
        self._aes = {version: AESGCM(key) for version, key in self._keys.items()}
        self.current_version = next(iter(self._keys))
        self.letter = CIPHERS[algorithm]
        self.current_prefix = f"${self.letter}{self.current_version}$"

    def encrypt(self, plaintext: str, purpose: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        key = self._keys[self.current_version]
        if self.letter == "a":
            sealed = self._aes[self.current_version].encrypt(
                nonce, plaintext.encode(), purpose.encode()
            )
        else:
            encryptor = Cipher(algorithms.SM4(key[:16]), modes.GCM(nonce)).encryptor()
            encryptor.authenticate_additional_data(purpose.encode())
            sealed = encryptor.update(plaintext.encode()) + encryptor.finalize() + encryptor.tag
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{self.current_prefix}{body}"

    def decrypt(self, token: str, purpose: str) -> str:
        match = SEALED.match(token)
        if match is None:
            raise DecryptionError("not a sealed value")
        letter, version = match.group(1), int(match.group(2))
        key = self._keys.get(version)
        if key is None:
            raise DecryptionError(f"no data key with version {version} is configured")
        body = token[len(letter) + len(match.group(2)) + 2:]
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        try:
            if letter == "a":
                return self._aes[version].decrypt(nonce, sealed, purpose.encode()).decode()
            decryptor = Cipher(
                algorithms.SM4(key[:16]), modes.GCM(nonce, sealed[-TAG_BYTES:])
            ).decryptor()
            decryptor.authenticate_additional_data(purpose.encode())
            return (decryptor.update(sealed[:-TAG_BYTES]) + decryptor.finalize()).decode()
        except (InvalidTag, ValueError) as error:
            raise DecryptionError("ciphertext failed authentication") from error

    @staticmethod
    def is_sealed(text: str | None) -> bool:
        return text is not None and SEALED.match(text) is not None

    def is_current(self, token: str) -> bool:
        return token.startswith(self.current_prefix)


def normalise(kind: str, value: str) -> str:
    """The spelling a blind index is taken of: emails lower-cased; phones arrive in E.164."""
    text = value.strip()
    return text.lower() if kind == "email" else text


class BlindIndex:
    """HMAC-SHA256 of the kind and the normalised value under a versioned key of its own."""

    def __init__(self, setting: str):
        self._keys = {version: _derive(b"idp-blind-index", secret)
                      for version, secret in parse_versioned_keys(setting, "IDP_BLIND_INDEX_KEYS")}
        self.current_version = next(iter(self._keys))
        self.current_prefix = f"h{self.current_version}."

    def _under(self, version: int, kind: str, value: str) -> str:
        message = f"{kind}\x00{normalise(kind, value)}".encode()
        mac = hmac.digest(self._keys[version], message, "sha256")[:INDEX_BYTES]
        return f"h{version}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def key(self, kind: str, value: str) -> str:
        return self._under(self.current_version, kind, value)

    def every_key(self, kind: str, value: str) -> list[str]:
        """The index under every configured version, the current first: what a lookup asks
        for while `idp keys rotate-data` has not yet rewritten every row."""
        return [self._under(version, kind, value) for version in self._keys]

    @staticmethod
    def is_index(text: str | None) -> bool:
        return text is not None and INDEXED.match(text) is not None

    def is_current(self, text: str) -> bool:
        return text.startswith(self.current_prefix)


@dataclass(frozen=True)
class PersonalData:
    cipher: FieldCipher
    index: BlindIndex

    @classmethod
    def from_config(cls, config: dict[str, str]) -> PersonalData:
        return cls(
            FieldCipher(config["IDP_DATA_KEYS"], str(config.get("IDP_DATA_CIPHER") or
                                                     "aes-256-gcm").lower()),
            BlindIndex(config["IDP_BLIND_INDEX_KEYS"]),
        )


def personal_data() -> PersonalData:
    """The application's cipher and blind index (bound by `create_app`)."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]
