"""Signing keys generated once per test process and used again by every test's database.

A 2048-bit RSA key takes 0.05–0.5 s to generate (the search for primes is random), and every test
that issued a token made one on its new database. Now a new signing key is the process's first
key of its algorithm that this database does not hold yet, generated only when there is none:
keys within one database stay distinct (rotation tests still see a new kid). Only
`idp.oidc.keys.generate_key` is replaced; tests that forge a token make their own key with
joserfc, and servers started as subprocesses generate theirs.

Each test's app has its own `KeyRing`, which parses a private key once per kid: importing an RSA
private key checks it (about 35 ms of CPU), and nearly every test that issued a token paid it
again for the same pooled key. The import is a function of the decrypted JWK alone, so its result
is kept per process by that text: a ring still decrypts its row, and any key that is not one
already imported (another secret, another kid, a key made by a test) is imported as before."""

from __future__ import annotations

from collections import defaultdict

from joserfc.jwk import Key

from idp.extensions import db
from idp.oidc import keys
from idp.oidc.models import SigningKey

_generate_key = keys.generate_key
_generated: defaultdict[str, list[Key]] = defaultdict(list)
_parse = keys.KeyRing._parse
_imported: dict[tuple[str, str, str], keys.LoadedKey] = {}


def _held(kid: str | None) -> bool:
    pending = any(isinstance(row, SigningKey) and row.kid == kid for row in db.session.new)
    return pending or db.session.get(SigningKey, kid) is not None


def _reused_key(alg: str) -> Key:
    for key in _generated[alg]:
        if not _held(key.kid):
            return key
    key = _generate_key(alg)
    _generated[alg].append(key)
    return key


def _parse_once_per_process(ring: keys.KeyRing, row: SigningKey) -> keys.LoadedKey:
    if row.kid not in ring._parsed:
        text = ring._box.decrypt(row.private_jwk_encrypted, context=row.kid)
        known = _imported.get((row.kid, row.alg, text))
        if known is None:
            _imported[(row.kid, row.alg, text)] = _parse(ring, row)
        else:
            ring._parsed[row.kid] = known
    return _parse(ring, row)


def reuse_signing_keys() -> None:
    keys.generate_key = _reused_key
    keys.KeyRing._parse = _parse_once_per_process  # type: ignore[method-assign]
