"""Signing keys: stored encrypted in the database, parsed once per process.

Every unretired key is published in the JWKS, so tokens signed before a rotation keep verifying
until their key is retired. Each process re-reads the key list at most every
`IDP_KEY_CACHE_SECONDS`, so a rotation made through any process (or the command line) is used and
published by all of them.

The rotation rule (docs/DEPLOYMENT.md, "Key rotation"): a new key signs only once every copy of
the JWKS that lacks it has expired — published by every process within IDP_KEY_CACHE_SECONDS, each
copy served before that fresh for IDP_JWKS_MAX_AGE at an RP or a proxy, plus
IDP_KEY_SIGN_MARGIN_SECONDS for clocks. Until then the previous key of its algorithm signs.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from joserfc import jwt
from joserfc.jwk import ECKey, Key, KeySet, RSAKey
from joserfc.jws import JWSRegistry
from sqlalchemy import select

from idp.crypto import SecretBox
from idp.extensions import db
from idp.models_base import utcnow
from idp.oidc.models import SigningKey

SUPPORTED_ALGORITHMS = ("RS256", "ES256")


class SigningKeyUnavailable(LookupError):
    """No usable key (e.g. every key of an algorithm was retired)."""


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    private: Key

    def sign_jwt(self, header: dict[str, str], claims: dict[str, Any]) -> str:
        """The JWS compact serialization (RFC 7515 §7.1) of `claims` signed with this key, the
        header as given (its `alg` this key's). RS256: the segments as joserfc forms them,
        the header's encoded once per header, the signature cryptography's (as joserfc's is),
        without joserfc's per-call registry, header checks and key lookup (~0.1 ms of each
        token the token endpoint signs); other algorithms through joserfc."""
        if self.alg != "RS256" or header.get("alg") != "RS256":
            return jwt.encode(header, claims, self.private, algorithms=[self.alg])
        payload = _b64(json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode())
        signing_input = _header_segment(tuple(header.items())) + b"." + payload
        signature = self._rsa_signer.sign(signing_input, _PKCS1V15, _SHA256)
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    @functools.cached_property
    def _rsa_signer(self) -> RSAPrivateKey:
        """The key's cryptography object, looked up once (joserfc's lookup checks the key's
        operations on every call)."""
        return self.private.get_op_key("sign")  # type: ignore[return-value]


_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@functools.lru_cache(maxsize=64)
def _header_segment(header: tuple[tuple[str, str], ...]) -> bytes:
    return _b64(json.dumps(dict(header), separators=(",", ":")).encode())


def generate_key(alg: str) -> Key:
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": alg}, auto_kid=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters={"use": "sig", "alg": alg}, auto_kid=True)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def sign_after_seconds(config: Mapping[str, Any]) -> float:
    """How long a new key is published before it signs (the rotation rule, see the module)."""
    return (
        float(config["IDP_KEY_CACHE_SECONDS"])
        + float(config["IDP_JWKS_MAX_AGE"])
        + float(config["IDP_KEY_SIGN_MARGIN_SECONDS"])
    )


def signing_rows(
    rows: Iterable[SigningKey], sign_after: float, now: datetime | None = None
) -> dict[str, SigningKey]:
    """Per algorithm, the unretired key that signs: the newest published at least `sign_after`
    seconds ago; while none is, the oldest (a first key, with nothing before it, signs at once)."""
    settled_before = (now or utcnow()) - timedelta(seconds=sign_after)
    live = sorted(
        (row for row in rows if row.retired_at is None),
        key=lambda row: _aware(row.created_at),
        reverse=True,
    )
    chosen: dict[str, SigningKey] = {}
    for alg in {row.alg for row in live}:
        candidates = [row for row in live if row.alg == alg]  # newest first
        settled = [row for row in candidates if _aware(row.created_at) <= settled_before]
        chosen[alg] = settled[0] if settled else candidates[-1]
    return chosen


def signs_from(row: SigningKey, sign_after: float) -> datetime:
    return _aware(row.created_at) + timedelta(seconds=sign_after)


def create_signing_key(box: SecretBox, alg: str) -> SigningKey:
    key = generate_key(alg)
    kid = key.kid
    assert kid
    row = SigningKey(
        kid=kid,
        alg=alg,
        private_jwk_encrypted=box.encrypt(json.dumps(key.as_dict(private=True)), context=kid),
        public_jwk=key.as_dict(private=False),
        created_at=utcnow(),
    )
    db.session.add(row)
    return row


def rotate_keys(box: SecretBox) -> list[SigningKey]:
    """A new key per algorithm becomes current; older ones stay published until retired."""
    rows = [create_signing_key(box, alg) for alg in SUPPORTED_ALGORITHMS]
    db.session.commit()
    return rows


def ensure_keys(box: SecretBox) -> None:
    present = set(db.session.scalars(select(SigningKey.alg).where(SigningKey.retired_at.is_(None))))
    missing = [alg for alg in SUPPORTED_ALGORITHMS if alg not in present]
    for alg in missing:
        create_signing_key(box, alg)
    if missing:
        db.session.commit()


def retire_key(kid: str, sign_after: float) -> SigningKey:
    """Takes a key out of the JWKS. Never the key that signs (its successor may still be waiting
    for every JWKS copy to contain it): rotate, wait until the new key signs, then retire."""
    row = db.session.get(SigningKey, kid)
    if row is None or row.retired_at is not None:
        raise SigningKeyUnavailable(f"no active key {kid!r}")
    siblings = db.session.scalars(
        select(SigningKey).where(SigningKey.alg == row.alg, SigningKey.retired_at.is_(None))
    ).all()
    if signing_rows(siblings, sign_after)[row.alg].kid == kid:
        raise SigningKeyUnavailable(
            f"{kid} is the {row.alg} key that signs: rotate first, and retire it once the new"
            " key signs"
        )
    row.retired_at = utcnow()
    db.session.commit()
    return row


LOOK_AGAIN_SECONDS = 1.0


def token_kid(token: str) -> str | None:
    """The `kid` of a compact JWS's header, unverified; None when there is none to read."""
    header = token.split(".", 1)[0]
    if len(header) > 1024:
        return None
    try:
        kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("kid")
    except (ValueError, TypeError, AttributeError):
        return None
    return kid if isinstance(kid, str) else None


MAX_TOKEN_LENGTH = 8192
MAX_REMEMBERED_HEADERS = 64
# Tokens whose signature verified, kept with their claims until the keys are next read
# (`KeyRing.verified_payload`); emptied when full. An access token and its claims take ~3 kB:
# ~12 MB per process at most.
MAX_REMEMBERED_TOKENS = 4096
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class KeyRing:
    """Per-process view of the keys; private keys are decrypted and parsed once per kid."""

    def __init__(self, box: SecretBox, cache_seconds: float, sign_after: float | None = None):
        self._box = box
        self._cache_seconds = cache_seconds
        # Without an explicit rule (a bare KeyRing), a new key signs one cache window later.
        self.sign_after = cache_seconds if sign_after is None else sign_after
        self._lock = threading.Lock()
        self._parsed: dict[str, LoadedKey] = {}
        self._current: dict[str, LoadedKey] = {}
        self._published: list[dict[str, Any]] = []
        self._published_body: bytes | None = None
        # header segment -> (algorithm, key) of headers that verified: our tokens have a few.
        self._verifiers: dict[tuple[str, str], tuple[Any, Key]] = {}
        self._verified: dict[tuple[str, str], dict[str, Any]] = {}
        self._keyset: KeySet | None = None
        # Never read yet: -inf, not 0.0 (the monotonic clock counts from boot: within the first
        # cache window after a machine starts, 0.0 looked like a fresh reading and no key loaded).
        self._loaded_at = float("-inf")
        self._kids: set[str] = set()
        self._looked_again_at = float("-inf")

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    def current(self, alg: str = "RS256") -> LoadedKey:
        self._refresh()
        try:
            return self._current[alg]
        except KeyError:
            raise SigningKeyUnavailable(
                f"no signing key for {alg}; run `idp keys rotate`"
            ) from None

    def public_jwks(self) -> dict[str, Any]:
        self._refresh()
        return {"keys": list(self._published)}

    def public_jwks_body(self) -> bytes:
        """`public_jwks` as the JSON the JWKS endpoint serves, encoded once per reading."""
        self._refresh()
        body = self._published_body
        if body is None:
            body = self._published_body = json.dumps({"keys": self._published}).encode()
        return body

    def verification_keys(self) -> KeySet:
        """Our own published keys, for verifying tokens we issued (id_token_hint, access tokens)."""
        self._refresh()
        assert self._keyset is not None
        return self._keyset

    def verified_payload(self, token: str, typ: str) -> dict[str, Any] | None:
        """The claims of a compact JWS signed by one of our published keys with header `typ`
        (RFC 7515 §5.2), else None. For tokens we issued and check on every request: a header
        that verified once is remembered with its key, so a new token's check parses no header
        and costs the signature check (joserfc's algorithm, the cached key) and the payload; a
        token that verified is remembered with its claims (a copy is given), so the same token
        again — a resource server's next call with it — costs a lookup. Both are forgotten
        whenever the keys are read again (every IDP_KEY_CACHE_SECONDS, and on an unknown
        `kid`): a key retired since verifies nothing more once this process has seen it gone,
        as before. The claims' times, issuer and revocation are the caller's, on every check."""
        self._refresh()
        remembered = self._verified.get((typ, token))
        if remembered is not None:
            return dict(remembered)
        if len(token) > MAX_TOKEN_LENGTH or not COMPACT_JWS.fullmatch(token):
            return None
        header_segment, payload_segment, signature_segment = token.split(".")
        verifier = self._verifiers.get((typ, header_segment)) or self._verifier(header_segment, typ)
        if verifier is None:
            return None
        algorithm, key = verifier
        try:
            signature = _b64decode(signature_segment)
            if not algorithm.verify(f"{header_segment}.{payload_segment}".encode(), signature, key):
                return None
            if len(self._verifiers) < MAX_REMEMBERED_HEADERS:
                self._verifiers[(typ, header_segment)] = verifier
            claims = json.loads(_b64decode(payload_segment))
        except ValueError:  # base64, UTF-8 and JSON errors alike
            return None
        if not isinstance(claims, dict):
            return None
        verified = self._verified
        if len(verified) >= MAX_REMEMBERED_TOKENS:
            verified.clear()
        verified[(typ, token)] = claims
        return dict(claims)

    def _verifier(self, header_segment: str, typ: str) -> tuple[Any, Key] | None:
        """RFC 7515 §4.1: only `alg` (one we sign with), `typ` and a `kid` of ours."""
        try:
            header = json.loads(_b64decode(header_segment))
        except ValueError:
            return None
        if not isinstance(header, dict) or set(header) - {"alg", "typ", "kid"}:
            return None
        alg, kid = header.get("alg"), header.get("kid")
        if header.get("typ") != typ or alg not in SUPPORTED_ALGORITHMS or kid not in self._kids:
            return None
        assert self._keyset is not None
        key = self._keyset.get_by_kid(kid)
        expected = RSAKey if alg == "RS256" else ECKey
        if not isinstance(key, expected):
            return None
        return JWSRegistry.algorithms[alg], key

    def look_again_for(self, token: str) -> bool:
        """After a token failed to verify: when its `kid` is one this process has not seen, read
        the keys again (at most once a second) and say so, for the caller to verify once more.
        Another process may have made the key since this one last looked: two processes racing
        on a first start both create a key, and either may sign with its own until the other's
        cache expires. Only the failure path pays for parsing the header."""
        kid = token_kid(token)
        if kid is None or kid in self._kids:
            return False
        if time.monotonic() - self._looked_again_at < LOOK_AGAIN_SECONDS:
            return False
        self._looked_again_at = time.monotonic()
        self.invalidate()
        self._refresh()
        return kid in self._kids

    def _refresh(self) -> None:
        if time.monotonic() - self._loaded_at < self._cache_seconds:
            return
        with self._lock:
            if time.monotonic() - self._loaded_at < self._cache_seconds:
                return
            rows = self._published_rows()
            if not {row.alg for row in rows} >= set(SUPPORTED_ALGORITHMS):
                # First start: create what is missing. Two processes racing here both create a
                # key; the newer simply becomes current, which is harmless.
                ensure_keys(self._box)
                rows = self._published_rows()
            current = {alg: self._parse(row) for alg, row in self._signing_rows(rows).items()}
            self._current = current
            self._published = [dict(row.public_jwk) for row in rows]
            self._published_body = None
            self._verifiers = {}
            self._verified = {}
            self._kids = {row.kid for row in rows}
            self._keyset = KeySet.import_key_set({"keys": self._published})
            self._loaded_at = time.monotonic()

    def _signing_rows(self, rows: list[SigningKey]) -> dict[str, SigningKey]:
        return signing_rows(rows, self.sign_after)

    @staticmethod
    def _published_rows() -> list[SigningKey]:
        return list(
            db.session.scalars(
                select(SigningKey)
                .where(SigningKey.retired_at.is_(None))
                .order_by(SigningKey.created_at.desc())
            )
        )

    def _parse(self, row: SigningKey) -> LoadedKey:
        loaded = self._parsed.get(row.kid)
        if loaded is None:
            data = json.loads(self._box.decrypt(row.private_jwk_encrypted, context=row.kid))
            key_class = RSAKey if row.alg == "RS256" else ECKey
            loaded = LoadedKey(kid=row.kid, alg=row.alg, private=key_class.import_key(data))
            self._parsed[row.kid] = loaded
        return loaded


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
