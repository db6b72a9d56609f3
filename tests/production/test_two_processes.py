"""Many processes, one IdP: two `idp serve` (gunicorn, 2 workers each) over one PostgreSQL and
one Redis answer as a single provider."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import requests

from tests.production.conftest import (
    Cluster,
    authorization_code,
    browser_login,
    redeem,
    refresh,
)


def signed_in(cluster: Cluster, at: int = 0) -> requests.Session:
    browser = requests.Session()
    browser_login(browser, cluster.urls[at])
    return browser


def test_a_code_issued_by_one_process_is_redeemed_at_the_other_once__rfc6749_4_1_2(
    cluster: Cluster,
) -> None:
    a, b = cluster.urls
    code, verifier = authorization_code(signed_in(cluster, 0), a, cluster)
    first = redeem(b, cluster, code, verifier)
    assert first.status_code == 200, first.text
    again = redeem(a, cluster, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_concurrent_redemptions_split_across_processes_yield_exactly_one_token(
    cluster: Cluster,
) -> None:
    code, verifier = authorization_code(signed_in(cluster, 1), cluster.urls[1], cluster)
    attempts = 10
    barrier = threading.Barrier(attempts)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(index: int) -> None:
        base = cluster.urls[index % 2]
        barrier.wait(timeout=10)
        status = redeem(base, cluster, code, verifier).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200] + [400] * (attempts - 1), statuses


def test_a_refresh_token_rotated_on_one_is_refused_on_the_other__rfc9700_4_14_2(
    cluster: Cluster,
) -> None:
    a, b = cluster.urls
    code, verifier = authorization_code(signed_in(cluster), a, cluster)
    tokens = redeem(a, cluster, code, verifier).json()
    rotated = refresh(a, cluster, tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    # Its response lost, the client retries on the other process within the grace window: the
    # same answer (issue 17), since the successor is unused.
    repeated = refresh(b, cluster, tokens["refresh_token"])
    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["refresh_token"] == rotated.json()["refresh_token"]
    newest = refresh(b, cluster, rotated.json()["refresh_token"])
    assert newest.status_code == 200, newest.text
    replayed = refresh(b, cluster, tokens["refresh_token"])
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    # The reuse revoked the whole family: the newest token of it is dead too, everywhere.
    assert refresh(a, cluster, newest.json()["refresh_token"]).status_code == 400
    userinfo = requests.get(
        f"{b}/oauth/userinfo",
        headers={"Authorization": f"Bearer {newest.json()['access_token']}"},
        timeout=10,
    )
    assert userinfo.status_code == 401


def kids(base: str) -> set[str]:
    return {key["kid"] for key in requests.get(f"{base}/oauth/jwks", timeout=10).json()["keys"]}


def unverified_kid(token: str) -> str:
    import base64
    import json

    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


def test_a_rotated_key_is_published_then_used_by_every_process(cluster: Cluster) -> None:
    """Published by all within the key cache window; signs only once every JWKS copy without it
    has expired (window + JWKS max-age + margin), so that a token from one process always
    verifies at the other and against any cached copy of either's JWKS."""
    a, b = cluster.urls
    window = float(cluster.env["IDP_KEY_CACHE_SECONDS"])
    sign_after = (
        window
        + float(cluster.env["IDP_JWKS_MAX_AGE"])
        + float(cluster.env["IDP_KEY_SIGN_MARGIN_SECONDS"])
    )
    code, verifier = authorization_code(signed_in(cluster), a, cluster)
    refresh_token = redeem(a, cluster, code, verifier).json()["refresh_token"]
    before = kids(a) | kids(b)

    cluster.cli("keys", "rotate")
    rotated_at = time.monotonic()
    new_kids: set[str] = set()
    published_by_both = used = None
    while time.monotonic() - rotated_at < sign_after + 2 * window + 5:
        published = kids(a) & kids(b)
        new_kids = published - before
        if len(new_kids) == 2 and published_by_both is None:
            published_by_both = time.monotonic() - rotated_at
        response = refresh(a, cluster, refresh_token)
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        refresh_token = tokens["refresh_token"]
        # Whatever key signed it, the other process accepts it at once.
        userinfo = requests.get(
            f"{b}/oauth/userinfo",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=10,
        )
        kid = unverified_kid(tokens["access_token"])
        assert userinfo.status_code == 200, (userinfo.status_code, kid)
        if kid in new_kids:
            used = time.monotonic() - rotated_at
            break
        time.sleep(0.2)
    assert published_by_both is not None and published_by_both <= window + 1.5, published_by_both
    # Not before every copy could hold it (the CLI's own exit takes a little of the margin).
    assert used is not None and sign_after - 3 <= used <= sign_after + window + 1.5, used


def test_rate_limits_are_counted_across_processes(cluster: Cluster) -> None:
    limit = int(cluster.env["IDP_TOKEN_RATE_LIMIT"].split("/")[0])
    client_id = "rate-" + uuid.uuid4().hex[:12]  # its own counter; unknown clients count too
    statuses = [
        requests.post(
            f"{cluster.urls[i % 2]}/oauth/token",
            data={"grant_type": "client_credentials", "client_id": client_id},
            timeout=10,
        ).status_code
        for i in range(limit + 6)
    ]
    refused = [status for status in statuses if status == 429]
    assert len(refused) == 6, statuses
    assert 429 not in statuses[:limit]


def metric_value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_add_up_over_gunicorn_workers(cluster: Cluster) -> None:
    a = cluster.urls[0]
    read = lambda: requests.get(f"{a}/metrics", timeout=10)  # noqa: E731
    response = read()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    before = metric_value(response.text, "idp_http_requests_total", endpoint="health.healthz")
    requests_made = 40
    for _ in range(requests_made):  # a connection each: they land on either worker
        assert requests.get(f"{a}/healthz", timeout=10).status_code == 200
    issued = requests.post(
        f"{cluster.urls[1]}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(cluster.client_id, cluster.client_secret),
        timeout=10,
    )
    assert issued.status_code == 200, issued.text
    text = read().text
    after = metric_value(text, "idp_http_requests_total", endpoint="health.healthz")
    assert after - before == requests_made
    # Each serve sums its own workers: the token was issued, and is counted, at the second.
    assert (
        metric_value(
            requests.get(f"{cluster.urls[1]}/metrics", timeout=10).text,
            "idp_tokens_issued_total",
            grant_type="client_credentials",
        )
        >= 1
    )


def test_metrics_refuse_a_forwarded_caller(cluster: Cluster) -> None:
    response = requests.get(
        f"{cluster.urls[0]}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
    )
    assert response.status_code == 403
    assert response.json()["request_id"]


def test_hup_reloads_gracefully_without_refusing_a_request(cluster: Cluster) -> None:
    import os
    import signal

    base = cluster.urls[1]
    master = cluster.processes[1].pid
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + 4
    statuses, retried = [], 0
    while time.monotonic() < deadline:
        try:
            statuses.append(requests.get(f"{base}/healthz", timeout=10).status_code)
        except requests.ConnectionError as error:
            # A connection the old worker accepted as it stopped may be closed without an
            # answer (granian 2.8): an HTTP client retries an idempotent request once (RFC 9110
            # §9.2.2). Refused connections and error answers are not tolerated.
            assert "RemoteDisconnected" in str(error) or "reset" in str(error), error
            retried += 1
            statuses.append(requests.get(f"{base}/healthz", timeout=10).status_code)
    assert statuses and set(statuses) == {200}
    assert retried <= 2, f"{retried} connections closed without an answer"
    assert cluster.processes[1].poll() is None


def test_failed_client_authentications_are_counted_across_processes(cluster: Cluster) -> None:
    """RFC 7662 §2.1: the failures guessing one client's secret at introspection add up over
    every process (Redis), so a second process is no fresh set of guesses."""
    limit = int(cluster.env.get("IDP_CLIENT_AUTH_FAILURE_LIMIT", "10/minute").split("/")[0])
    client_id = "guess-" + uuid.uuid4().hex[:12]  # its own counter; unknown clients count too
    statuses = [
        requests.post(
            f"{cluster.urls[i % 2]}/oauth/introspect", data={"token": "x"},
            auth=(client_id, f"guess-{i}"), timeout=10,
        ).status_code
        for i in range(limit + 2)
    ]
    assert statuses == [401] * limit + [429, 429], statuses
