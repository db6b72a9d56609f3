"""The WeChat client's transport (urllib3, `idp.wechat.client._pool_manager`): the environment's
proxy settings and CA bundle are honoured as requests honoured them (HTTPS_PROXY / HTTP_PROXY,
NO_PROXY, REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE), and a pool follows no redirect and retries
nothing (a js_code must reach WeChat at most once)."""

from __future__ import annotations

import certifi
import pytest
import urllib3

from idp.wechat.client import _pool_manager


def test_a_proxy_in_the_environment_carries_the_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    manager = _pool_manager("https://api.weixin.qq.com")
    assert isinstance(manager, urllib3.ProxyManager)
    assert manager.proxy is not None and manager.proxy.host == "proxy.internal"


def test_no_proxy_names_a_host_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "api.weixin.qq.com")
    manager = _pool_manager("https://api.weixin.qq.com")
    assert not isinstance(manager, urllib3.ProxyManager)


def test_tls_is_verified_against_the_configured_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    manager = _pool_manager("https://api.weixin.qq.com")
    assert manager.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    assert manager.connection_pool_kw["ca_certs"] == certifi.where()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    bundled = _pool_manager("https://api.weixin.qq.com")
    assert bundled.connection_pool_kw["ca_certs"] == "/etc/ssl/certs/ca-certificates.crt"
    assert bundled.connection_pool_kw["retries"].total is False  # no transport retry
