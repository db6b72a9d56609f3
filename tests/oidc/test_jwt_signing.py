"""The IdP's own JWS serialization of the tokens it signs (`LoadedKey.sign_jwt`, RFC 7515 §7.1):
byte for byte what joserfc gives for RS256 (PKCS#1 v1.5 signatures are deterministic), and
joserfc's for every other algorithm."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from idp.oidc.keys import LoadedKey


def test_rs256_is_joserfcs_serialization_byte_for_byte__rfc7515_7_1() -> None:
    key = LoadedKey(kid="k1", alg="RS256", private=RSAKey.generate_key(2048))
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}
    claims = {"iss": "https://idp.example", "sub": "账户", "aud": ["c"], "exp": 2_000_000_000,
              "amr": ["pwd", "sms"], "nested": {"a": [1, 2.5, None, True]}}
    signed = key.sign_jwt(header, claims)
    assert signed == jwt.encode(header, claims, key.private, algorithms=["RS256"],
                                default_type=None)
    decoded = jwt.decode(signed, key.private, algorithms=["RS256"])
    assert decoded.header == header and decoded.claims == claims


def test_other_algorithms_are_signed_by_joserfc__rfc7518_3_4() -> None:
    key = LoadedKey(kid="e1", alg="ES256", private=ECKey.generate_key("P-256"))
    header = {"alg": "ES256", "kid": "e1", "typ": "JWT"}
    signed = key.sign_jwt(header, {"sub": "x"})
    decoded = jwt.decode(signed, key.private, algorithms=["ES256"])
    assert decoded.header == header and decoded.claims == {"sub": "x"}
