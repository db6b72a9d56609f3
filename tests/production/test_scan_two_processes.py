"""Scan-to-sign-in across processes: two `idp serve` (2 gunicorn workers each) over one
PostgreSQL and one Redis, and the fake WeChat. The code is shown by one process, scanned and
confirmed at the other, waited for at the first, and the browser signs in at the second, once."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from idp.wechat.fake import FakeWeChatServer
from tests.production.conftest import Cluster, csrf_token

APPID = "wxprodscan00000001"
APP_SECRET = "prod-scan-secret-0123456789abcdef"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TIMEOUT = 30


@pytest.fixture(scope="module")
def fake_wechat(fake_wechat_server: FakeWeChatServer) -> FakeWeChatServer:
    """The shared fake, for the whole module (its servers are told about APPID once)."""
    fake_wechat_server.control.reset()
    fake_wechat_server.control.register_app(APPID, APP_SECRET, kind="miniprogram")
    return fake_wechat_server


@pytest.fixture(scope="module")
def cluster_settings(fake_wechat: FakeWeChatServer) -> dict[str, str]:
    return {"IDP_WECHAT_API_BASE": fake_wechat.base_url,
            "IDP_WECHAT_SCAN_LONG_POLL_SECONDS": "5"}


@pytest.fixture(scope="module")
def mini_client_id(cluster: Cluster) -> str:
    cluster.cli("wechat-apps", "create", "--kind", "miniprogram", "--appid", APPID,
                "--secret-stdin", stdin=APP_SECRET + "\n")
    created = json.loads(cluster.cli(
        "clients", "create", "--name", "Scan mini-program", "--public", "--wechat-appid", APPID,
        "--grant-type", TOKEN_EXCHANGE, "--scope", "openid", "--json"))
    return str(created["client_id"])


def mini_program_token(cluster: Cluster, fake: FakeWeChatServer, client_id: str, at: int) -> str:
    code = fake.control.issue_js_code(APPID, user="prod-scanner").code
    answer = requests.post(f"{cluster.urls[at]}/oauth/token", timeout=TIMEOUT, data={
        "grant_type": TOKEN_EXCHANGE, "client_id": client_id, "subject_token": code,
        "subject_token_type": "urn:wechat:params:oauth:token-type:js_code", "scope": "openid"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def show_code(browser: requests.Session, base: str, fake: FakeWeChatServer) -> str:
    image = browser.get(f"{base}/login/scan/code.png", timeout=TIMEOUT)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    return str(fake.control.wxacodes()[-1]["scene"])


def finish(browser: requests.Session, base: str) -> requests.Response:
    page = browser.get(f"{base}/login", timeout=TIMEOUT)
    return browser.post(f"{base}/login/scan/finish", data={"csrf_token": csrf_token(page.text)},
                        allow_redirects=False, timeout=TIMEOUT)


def test_shown_by_one_process_confirmed_at_the_other_signed_in_once(
    cluster: Cluster, fake_wechat: FakeWeChatServer, mini_client_id: str
) -> None:
    first, second = cluster.urls
    token = mini_program_token(cluster, fake_wechat, mini_client_id, at=1)
    bearer = {"Authorization": f"Bearer {token}"}
    browser = requests.Session()
    scene = show_code(browser, first, fake_wechat)

    shown = requests.get(f"{second}/wechat/scan/{scene}", headers=bearer, timeout=TIMEOUT)
    assert shown.status_code == 200 and shown.json()["status"] == "scanned"
    waited: dict[str, str] = {}
    waiter = threading.Thread(target=lambda: waited.update(browser.get(
        f"{first}/login/scan/status", params={"seen": "scanned"}, timeout=TIMEOUT).json()))
    waiter.start()
    confirmed = requests.post(f"{second}/wechat/scan/{scene}", json={"decision": "confirm"},
                              headers=bearer, timeout=TIMEOUT)
    waiter.join(TIMEOUT)
    assert confirmed.json() == {"status": "confirmed"}
    assert waited["status"] == "confirmed"  # the long-poll at the first process saw it

    done = finish(browser, second)
    assert done.status_code == 302, done.text[:500]
    assert finish(browser, first).status_code == 400  # once, whichever process is asked


def test_concurrent_answers_at_both_processes_yield_exactly_one(
    cluster: Cluster, fake_wechat: FakeWeChatServer, mini_client_id: str
) -> None:
    token = mini_program_token(cluster, fake_wechat, mini_client_id, at=0)
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(5):
        scene = show_code(requests.Session(), cluster.urls[0], fake_wechat)
        start = threading.Barrier(4)
        statuses: list[int] = []

        def answer(base: str, decision: str, start: threading.Barrier = start,
                   scene: str = scene, statuses: list[int] = statuses) -> None:
            start.wait()
            response = requests.post(f"{base}/wechat/scan/{scene}", json={"decision": decision},
                                     headers=bearer, timeout=TIMEOUT)
            statuses.append(response.status_code)

        threads = [threading.Thread(target=answer, args=(base, decision))
                   for base in cluster.urls for decision in ("confirm", "refuse")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert sorted(statuses) == [200, 409, 409, 409]
