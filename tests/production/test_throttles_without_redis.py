"""Without Redis, throttles still count across processes (issue 10, item 6): two `idp serve`
(2 workers each) on one machine share the throttle file under instance/. Before, the documented
5 password tries became 13-15 and one SMS a minute became 2-3."""

from __future__ import annotations

import pytest
import requests

from idp.sms.fake import FakeSmsServer
from tests.production.conftest import PHONE, Cluster, csrf_token
from tests.production.test_sms_two_processes import ask_concurrently
from tests.sms.conftest import provider_config


@pytest.fixture(scope="module")
def cluster_settings(fake_sms_server: FakeSmsServer) -> dict[str, str]:
    """The module's servers point at the shared fake; each test gets it reset (`fake_sms`)."""
    settings = {name: str(value) for name, value in
                provider_config("aliyun", fake_sms_server.base_url).items()}
    settings["IDP_REDIS_URL"] = ""  # no Redis: the embedded store only
    return settings


def test_five_password_tries_in_all_across_processes(cluster: Cluster) -> None:
    """Sequential tries, each from a new connection, alternating the two servers (and so
    landing on any of the four workers): counted per worker, 8 tries would all be answered."""
    statuses = []
    for index in range(8):
        browser = requests.Session()
        base = cluster.urls[index % 2]
        page = browser.get(f"{base}/login", timeout=10)
        response = browser.post(
            f"{base}/login",
            data={"identifier": PHONE, "password": "wrong password",
                  "csrf_token": csrf_token(page.text)},
            allow_redirects=False, timeout=30,
        )
        statuses.append(response.status_code)
    assert statuses == [200] * 5 + [429] * 3


def test_one_sms_a_minute_across_processes(cluster: Cluster, fake_sms: FakeSmsServer) -> None:
    statuses = ask_concurrently(cluster, ["+8613900000002"] * 8)
    assert sorted(statuses) == [302] + [429] * 7
    assert len(fake_sms.control.messages("+8613900000002")) == 1
