"""SMS limits hold across processes (issue 11): two `idp serve` (gunicorn, 2 workers each) over
one PostgreSQL and one Redis, sending through the fake Aliyun SMS; concurrent asks for one phone
get exactly one code, and one address gets exactly its 10 an hour, however the requests are
spread."""

from __future__ import annotations

import threading

import pytest
import requests

from idp.sms.fake import FakeSmsServer
from tests.production.conftest import Cluster, csrf_token
from tests.sms.conftest import provider_config, register_accounts


@pytest.fixture(scope="module")
def fake_sms(fake_sms_server: FakeSmsServer) -> FakeSmsServer:
    """Reset once for the module: a test counts the codes the ones before it sent."""
    fake_sms_server.control.reset()
    register_accounts(fake_sms_server)
    return fake_sms_server


@pytest.fixture(scope="module")
def cluster_settings(fake_sms: FakeSmsServer) -> dict[str, str]:
    settings = provider_config("aliyun", fake_sms.base_url)
    return {name: str(value) for name, value in settings.items()}


def ask_concurrently(cluster: Cluster, phones: list[str]) -> list[int]:
    """Each ask from its own browser, spread over both processes, all released at once."""
    browsers = []
    for index, _ in enumerate(phones):
        browser = requests.Session()
        base = cluster.urls[index % 2]
        page = browser.get(f"{base}/login", timeout=10)
        browsers.append((browser, base, csrf_token(page.text)))
    barrier = threading.Barrier(len(phones))
    statuses: list[int] = []
    lock = threading.Lock()

    def ask(index: int) -> None:
        browser, base, token = browsers[index]
        barrier.wait(timeout=20)
        response = browser.post(
            f"{base}/login/sms/send", data={"phone": phones[index], "csrf_token": token},
            allow_redirects=False, timeout=20,
        )
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(phones))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def test_concurrent_asks_for_one_phone_send_exactly_one_code(
    cluster: Cluster, fake_sms: FakeSmsServer
) -> None:
    statuses = ask_concurrently(cluster, ["+8613900000001"] * 8)
    assert sorted(statuses) == [302] + [429] * 7
    assert len(fake_sms.control.messages("+8613900000001")) == 1


def test_one_address_gets_ten_codes_an_hour_across_processes(
    cluster: Cluster, fake_sms: FakeSmsServer
) -> None:
    already = len(fake_sms.control.messages())  # every ask here comes from 127.0.0.1
    phones = [f"+86139100{n:05d}" for n in range(14)]
    statuses = ask_concurrently(cluster, phones)
    assert statuses.count(302) == 10 - already
    assert len(fake_sms.control.messages()) == 10
