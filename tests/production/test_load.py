"""A bounded load test: a few thousand mixed requests spread over two `idp serve` processes
(PostgreSQL + Redis), then the database is checked: no 5xx, nothing lost, nothing duplicated."""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from tests.production.conftest import (
    Cluster,
    authorization_code,
    browser_login,
    redeem,
    refresh,
)

BROWSERS = 6
ROUNDS_PER_BROWSER = 25  # each round is ~10 requests: about 1,500 requests, plus logins


@pytest.fixture(scope="module")
def cluster_settings() -> dict[str, str]:
    return {"IDP_TOKEN_RATE_LIMIT": "100000/minute"}


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.refresh_tokens: list[str] = []
        self.redeemed_codes = 0
        self.final_refresh_tokens: list[str] = []
        self.revoked_refresh_tokens: list[str] = []

    def saw(self, response: requests.Response) -> requests.Response:
        with self.lock:
            self.statuses[response.status_code] += 1
        return response


def one_browser(cluster: Cluster, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - choosing servers, not secrets
    auth = (cluster.client_id, cluster.client_secret)
    browser = requests.Session()
    browser_login(browser, cluster.urls[seed % 2])
    refresh_token = None
    for _ in range(ROUNDS_PER_BROWSER):
        here, there = rng.sample(cluster.urls, 2)
        code, verifier = authorization_code(browser, here, cluster)
        tokens = tally.saw(redeem(there, cluster, code, verifier))
        assert tokens.status_code == 200, tokens.text
        with tally.lock:
            tally.redeemed_codes += 1
            tally.refresh_tokens.append(tokens.json()["refresh_token"])
        if refresh_token is None:
            refresh_token = tokens.json()["refresh_token"]  # the chain this browser keeps
        else:
            # Replaying a code is refused and kills what it issued (RFC 6749 §4.1.2).
            replay = tally.saw(redeem(here, cluster, code, verifier))
            assert replay.status_code == 400
            dead = tally.saw(
                requests.get(f"{there}/oauth/userinfo", timeout=10,
                             headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
            )  # fmt: skip
            assert dead.status_code == 401
            with tally.lock:
                tally.revoked_refresh_tokens.append(tokens.json()["refresh_token"])
        rotated = tally.saw(refresh(rng.choice(cluster.urls), cluster, refresh_token))
        assert rotated.status_code == 200, rotated.text
        refresh_token = rotated.json()["refresh_token"]
        with tally.lock:
            tally.refresh_tokens.append(refresh_token)
        for base in cluster.urls:
            userinfo = tally.saw(
                requests.get(f"{base}/oauth/userinfo", timeout=10,
                             headers={"Authorization": f"Bearer {rotated.json()['access_token']}"})
            )  # fmt: skip
            assert userinfo.status_code == 200, (
                base, userinfo.headers.get("WWW-Authenticate"), userinfo.text,
                rotated.json()["access_token"])
        introspected = tally.saw(
            requests.post(f"{rng.choice(cluster.urls)}/oauth/introspect",
                          data={"token": refresh_token}, auth=auth, timeout=10)
        )  # fmt: skip
        assert introspected.json()["active"] is True
        tally.saw(
            requests.post(f"{rng.choice(cluster.urls)}/oauth/token",
                          data={"grant_type": "client_credentials"}, auth=auth, timeout=10)
        )  # fmt: skip
    with tally.lock:
        tally.final_refresh_tokens.append(refresh_token or "")


def test_mixed_load_over_two_processes_loses_and_duplicates_nothing(cluster: Cluster) -> None:
    tally = Tally()
    with ThreadPoolExecutor(max_workers=BROWSERS) as pool:
        for future in [pool.submit(one_browser, cluster, tally, n) for n in range(BROWSERS)]:
            future.result(timeout=300)

    assert sum(tally.statuses.values()) > 1000
    assert not [status for status in tally.statuses if status >= 500], tally.statuses

    digests = [hashlib.sha256(t.encode()).hexdigest() for t in tally.refresh_tokens]
    assert len(set(digests)) == len(digests)  # no token handed out twice
    engine = sa.create_engine(cluster.env["IDP_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            stored = set(connection.execute(sa.text("SELECT token_digest FROM refresh_token"))
                         .scalars())  # fmt: skip
            used_codes = connection.execute(sa.text(
                "SELECT count(*) FROM authorization_code WHERE used_at IS NOT NULL"
            )).scalar_one()  # fmt: skip
            revoked = set(connection.execute(sa.text(
                "SELECT token_digest FROM refresh_token WHERE revoked_at IS NOT NULL"
            )).scalars())  # fmt: skip
            live = set(connection.execute(sa.text(
                "SELECT token_digest FROM refresh_token"
                " WHERE rotated_at IS NULL AND revoked_at IS NULL"
            )).scalars())  # fmt: skip
    finally:
        engine.dispose()
    assert set(digests) <= stored  # every issued refresh token was stored: nothing lost
    assert used_codes >= tally.redeemed_codes
    finals = {hashlib.sha256(t.encode()).hexdigest() for t in tally.final_refresh_tokens}
    assert finals <= live  # the latest of each chain is the one still usable
    replayed = {hashlib.sha256(t.encode()).hexdigest() for t in tally.revoked_refresh_tokens}
    assert replayed and replayed <= revoked  # and what replayed codes issued is dead
