"""Legacy mini-program data: `encryptedData` decryption and the `rawData` signature.

Newer mini-programs get the phone through `getuserphonenumber`; this stays for clients that still
send `encryptedData`. The session_key is the AES key, which is why it never leaves the IdP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from idp.wechat.errors import DecryptionFailed, WatermarkMismatch

AES_BLOCK_BITS = 128


def decrypt_encrypted_data(
    session_key_b64: str, encrypted_data_b64: str, iv_b64: str, expected_appid: str
) -> dict[str, Any]:
    """AES-128-CBC + PKCS#7 as WeChat specifies; the watermark proves the data is for us."""
    key, iv, ciphertext = (_b64(session_key_b64), _b64(iv_b64), _b64(encrypted_data_b64))
    _check_lengths(key, iv, ciphertext)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(AES_BLOCK_BITS).unpadder()
    try:
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        plaintext = unpadder.update(padded) + unpadder.finalize()
        data = json.loads(plaintext)
    except ValueError:
        # A wrong or stale session_key lands here: garbage padding or garbage JSON.
        raise DecryptionFailed() from None
    return _check_watermark(data, expected_appid)


def encrypt_for_test(session_key_b64: str, data: dict[str, Any], iv_b64: str) -> str:
    """The inverse of `decrypt_encrypted_data`, for the fake WeChat and tests only."""
    key, iv = _b64(session_key_b64), _b64(iv_b64)
    padder = padding.PKCS7(AES_BLOCK_BITS).padder()
    padded = padder.update(json.dumps(data).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def raw_data_signature(raw_data: str, session_key: str) -> str:
    # SHA-1 is what WeChat specifies for this signature; we do not get to choose.
    digest = hashlib.sha1((raw_data + session_key).encode())  # noqa: S324
    return digest.hexdigest()


def raw_data_signature_matches(raw_data: str, signature: str, session_key: str) -> bool:
    expected = raw_data_signature(raw_data, session_key)
    return hmac.compare_digest(expected, signature.lower())


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionFailed("a field is not valid base64") from None


def _check_lengths(key: bytes, iv: bytes, ciphertext: bytes) -> None:
    if len(key) != 16 or len(iv) != 16:
        raise DecryptionFailed("session_key and iv must be 16 bytes")
    if not ciphertext or len(ciphertext) % 16:
        raise DecryptionFailed("encryptedData is not whole AES blocks")


def _check_watermark(data: object, expected_appid: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise DecryptionFailed("decrypted data is not a JSON object")
    watermark = data.get("watermark")
    appid = watermark.get("appid") if isinstance(watermark, dict) else None
    if appid != expected_appid:
        raise WatermarkMismatch()
    return data
