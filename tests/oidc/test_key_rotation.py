"""Key rotation against relying parties that cache the JWKS as told (issue 17 item 2).

The rule (docs/DEPLOYMENT.md, "Key rotation"): a new key signs only once every published copy of
the JWKS without it has expired — every process publishes it within IDP_KEY_CACHE_SECONDS, a copy
served before that stays fresh for IDP_JWKS_MAX_AGE (RFC 9111 §4.2.1), plus a margin. Real HTTP on
loopback, short windows (1 s cache, 2 s max-age, 1 s margin), both databases."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from werkzeug.serving import make_server

from idp import create_app
from idp.extensions import db
from idp.models_base import utcnow
from tests.conftest import base_config

WINDOWS = {"IDP_KEY_CACHE_SECONDS": 1, "IDP_JWKS_MAX_AGE": 2, "IDP_KEY_SIGN_MARGIN_SECONDS": 1}
SIGN_AFTER = sum(WINDOWS.values())


@dataclass
class Served:
    issuer: str
    app: Any
    auth: tuple[str, str]


@pytest.fixture
def served(tmp_path: Path, database_url: str, backend: str) -> Iterator[Served]:
    server = make_server("127.0.0.1", 0, None, threaded=True)
    port = server.server_port
    server.server_close()
    issuer = f"http://127.0.0.1:{port}"
    app = create_app({**base_config(tmp_path, database_url), "IDP_ISSUER": issuer, **WINDOWS})
    with app.app_context():
        if backend == "postgresql":
            db.drop_all()
        db.create_all()
        from idp.oidc.clients import create_client
        from idp.oidc.context import keyring

        keyring().current()  # the first keys (a first key signs at once)
        client, secret = create_client(
            name="Service", grant_types=["client_credentials"], scope="openid"
        )
        assert secret is not None
        auth = (client.client_id, secret)
        db.session.remove()
    http_server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(issuer, app, auth)
    finally:
        http_server.shutdown()
        with app.app_context():
            db.engine.dispose()


def max_age(response: requests.Response) -> float:
    match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
    assert match, response.headers
    return float(match.group(1))


@dataclass
class CachingRelyingParty:
    """Keeps each JWKS copy for exactly its max-age and never re-fetches earlier, not even for
    an unknown `kid`: the strictest reading of Cache-Control, and what many RPs do."""

    jwks_uri: str
    keys: KeySet | None = None
    fresh_until: float = 0.0

    def key_set(self) -> KeySet:
        if self.keys is None or time.monotonic() >= self.fresh_until:
            response = requests.get(self.jwks_uri, timeout=10)
            self.keys = KeySet.import_key_set(response.json())
            self.fresh_until = time.monotonic() + max_age(response)
        return self.keys

    def verifies(self, token: str) -> bool:
        try:
            jwt.decode(token, self.key_set(), algorithms=["RS256", "ES256"])
        except JoseError:
            return False
        return True


@dataclass
class LateFetcher:
    """Fetches the JWKS every 0.1 s and remembers the last copy without the new keys: the RP (or
    proxy) whose stale copy lives longest."""

    jwks_uri: str
    new_kids: set[str] = field(default_factory=set)
    last_stale_copy_until: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            fetched_at = time.monotonic()
            response = requests.get(self.jwks_uri, timeout=10)
            kids = {key["kid"] for key in response.json()["keys"]}
            if self.new_kids and not self.new_kids <= kids:
                self.last_stale_copy_until = fetched_at + max_age(response)
            self.stop.wait(0.1)


def access_token(served: Served) -> str:
    response = requests.post(
        f"{served.issuer}/oauth/token", data={"grant_type": "client_credentials"},
        auth=served.auth, timeout=10,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def kid_of(token: str) -> str:
    return str(jws.extract_compact(token.encode()).headers()["kid"])


def test_a_new_key_signs_only_when_every_cached_jwks_holds_it__rfc9111_4_2_1(
    served: Served,
) -> None:
    jwks_uri = f"{served.issuer}/oauth/jwks"
    relying_party = CachingRelyingParty(jwks_uri)
    assert relying_party.verifies(access_token(served))  # its copy: the old keys only

    late = LateFetcher(jwks_uri)
    poller = threading.Thread(target=late.run, daemon=True)
    with served.app.app_context():
        from idp.oidc.keys import rotate_keys

        late.new_kids = {row.kid for row in rotate_keys(served.app.extensions["idp_secret_box"])}
        db.session.remove()
    rotated_at = time.monotonic()
    poller.start()
    first_signed_with_new: float | None = None
    refused: list[tuple[float, str]] = []
    try:
        while time.monotonic() - rotated_at < SIGN_AFTER + 2 * WINDOWS["IDP_KEY_CACHE_SECONDS"] + 2:
            token = access_token(served)
            issued_at = time.monotonic()
            if not relying_party.verifies(token):
                refused.append((round(issued_at - rotated_at, 2), kid_of(token)))
            if kid_of(token) in late.new_kids and first_signed_with_new is None:
                first_signed_with_new = issued_at
            time.sleep(0.1)
    finally:
        late.stop.set()
        poller.join(timeout=10)

    assert refused == [], f"tokens an RP caching the JWKS as told could not verify: {refused}"
    assert first_signed_with_new is not None, "the new key never signed"
    # No copy without the new key was still fresh when it first signed.
    assert late.last_stale_copy_until > rotated_at
    assert first_signed_with_new >= late.last_stale_copy_until
    assert first_signed_with_new - rotated_at >= SIGN_AFTER - WINDOWS["IDP_KEY_CACHE_SECONDS"]
    assert max_age(requests.get(jwks_uri, timeout=10)) == WINDOWS["IDP_JWKS_MAX_AGE"]


def test_the_key_that_signs_cannot_be_retired_before_its_successor_signs(
    served: Served,
) -> None:
    from idp.oidc.keys import SigningKeyUnavailable, retire_key, rotate_keys, signing_rows
    from idp.oidc.models import SigningKey

    with served.app.app_context():
        sign_after = served.app.extensions["idp_keyring"].sign_after
        assert sign_after == SIGN_AFTER
        before = signing_rows(db.session.query(SigningKey), sign_after)
        old = {alg: row.kid for alg, row in before.items()}
        rotate_keys(served.app.extensions["idp_secret_box"])
        # Still the old keys sign: retiring one now would leave the new key signing at once.
        now = signing_rows(db.session.query(SigningKey), sign_after)
        assert {alg: row.kid for alg, row in now.items()} == old
        with pytest.raises(SigningKeyUnavailable, match="rotate first"):
            retire_key(old["RS256"], sign_after)
        db.session.remove()


def test_the_command_line_says_when_a_new_key_signs(served: Served) -> None:
    from idp.cli import keys

    runner = served.app.test_cli_runner()
    rotated = runner.invoke(keys, ["rotate"])
    assert rotated.exit_code == 0, rotated.output
    assert rotated.output.count("published; it signs from ") == 2
    listing = runner.invoke(keys, ["list"]).output.splitlines()
    assert sum("current" in line for line in listing) == 2  # the old keys still sign
    assert sum("published, signs from" in line for line in listing) == 2


def test_a_key_another_process_made_is_looked_up_at_once__rfc7515_4_1_4(app: Any) -> None:
    """Two processes racing on a first start may each create a key and sign with it before the
    other's cache sees it: a token whose `kid` this process has not seen makes it read the keys
    again (at most once a second) instead of refusing a token of our own."""
    from idp.oidc.context import secret_box
    from idp.oidc.keys import KeyRing, create_signing_key, ensure_keys

    with app.app_context():
        here = KeyRing(secret_box(), cache_seconds=3600, sign_after=0)
        ensure_keys(secret_box())
        here.current()  # this process has looked: its cache holds the first keys
        other = create_signing_key(secret_box(), "RS256")  # made by another process
        db.session.commit()
        token = jwt.encode({"alg": "RS256", "kid": other.kid}, {"sub": "x"},
                           KeyRing(secret_box(), 0, sign_after=0).current("RS256").private)
        with pytest.raises(JoseError):
            jwt.decode(token, here.verification_keys())  # this process has not seen the kid
        assert here.look_again_for(token)
        assert jwt.decode(token, here.verification_keys()).claims == {"sub": "x"}
        unknown = "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5vYm9keSJ9.e30.c2ln"  # kid "nobody"
        assert not here.look_again_for(unknown)  # within the second: no new read
        assert not here.look_again_for(token)  # known now


def test_a_verified_token_is_remembered_until_its_key_is_retired__rfc7515_5_2(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same token checked again (a resource server's next call) costs no signature check;
    once its key is retired, the next read of the keys forgets it and it verifies no more."""
    from joserfc.jws import JWSRegistry

    from idp.oidc.context import secret_box
    from idp.oidc.keys import KeyRing, create_signing_key, ensure_keys

    with app.app_context():
        ensure_keys(secret_box())
        other = create_signing_key(secret_box(), "RS256")  # published; retired below
        db.session.commit()
        here = KeyRing(secret_box(), cache_seconds=3600, sign_after=0)
        signer = KeyRing(secret_box(), 0, sign_after=0)
        signer.current()
        token = signer._parse(other).sign_jwt(
            {"alg": "RS256", "typ": "at+jwt", "kid": other.kid}, {"sub": "x", "aud": ["a"]})
        checks: list[bytes] = []
        rs256 = JWSRegistry.algorithms["RS256"]
        verify = rs256.verify
        monkeypatch.setattr(rs256, "verify", lambda message, signature, key: (
            checks.append(signature), verify(message, signature, key))[1])
        first = here.verified_payload(token, "at+jwt")
        assert first == {"sub": "x", "aud": ["a"]} and len(checks) == 1
        first["sub"] = "changed by a caller"
        assert here.verified_payload(token, "at+jwt") == {"sub": "x", "aud": ["a"]}
        assert len(checks) == 1  # remembered: no second signature check
        assert here.verified_payload(token, "JWT") is None  # remembered for its type only
        other.retired_at = utcnow()
        db.session.commit()
        here.invalidate()  # what IDP_KEY_CACHE_SECONDS does in time
        assert here.verified_payload(token, "at+jwt") is None
