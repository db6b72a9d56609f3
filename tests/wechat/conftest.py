"""A real fake WeChat on loopback for the whole session; its state is reset before each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from idp.wechat.client import WeChatClient
from idp.wechat.fake import FakeWeChatControl, FakeWeChatServer
from idp.wechat.token_store import MemoryAccessTokenStore

MINI_APPID = "wx1111111111111111"
MINI_SECRET = "mini-app-secret-0123456789abcdef"
WEB_APPID = "wx2222222222222222"
WEB_SECRET = "web-app-secret-fedcba9876543210"
# Small but generous for loopback; the timeout tests use their own, smaller read timeout.
TIMEOUT = (1.0, 2.0)


@pytest.fixture
def control(fake_wechat: FakeWeChatServer) -> FakeWeChatControl:
    fake_wechat.control.register_app(MINI_APPID, MINI_SECRET, kind="miniprogram")
    fake_wechat.control.register_app(WEB_APPID, WEB_SECRET, kind="website")
    return fake_wechat.control


@pytest.fixture
def make_client(
    fake_wechat: FakeWeChatServer, control: FakeWeChatControl
) -> Iterator[Callable[..., WeChatClient]]:
    clients: list[WeChatClient] = []

    def build(
        appid: str = MINI_APPID,
        secret: str = MINI_SECRET,
        timeout: tuple[float, float] = TIMEOUT,
        **options: Any,
    ) -> WeChatClient:
        options.setdefault("token_store", MemoryAccessTokenStore())
        client = WeChatClient(fake_wechat.base_url, appid, secret, timeout=timeout, **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., WeChatClient]) -> WeChatClient:
    return make_client()


@pytest.fixture
def web_client(make_client: Callable[..., WeChatClient]) -> WeChatClient:
    return make_client(WEB_APPID, WEB_SECRET)
