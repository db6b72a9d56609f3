"""What the mini-program's confirm page says about the requesting browser: a short browser name
and the network, never the full address."""

from __future__ import annotations

import pytest

from idp.wechat_login.requester import describe_browser, network_of


@pytest.mark.parametrize(
    ("user_agent", "described"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
         " Chrome/120.0.0.0 Safari/537.36", "Chrome 120 on Windows"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
         " Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61", "Edge 120 on Windows"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko)"
         " Version/17.1 Safari/605.1.15", "Safari 17 on macOS"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
         "Firefox 121 on Linux"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
         " Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c)", "WeChat 8 on iOS"),
        ("curl/8.4.0", "a browser"),
        ("", "a browser"),
        ("<script>alert(1)</script>" * 20, "a browser"),
    ],
)
def test_describe_browser(user_agent: str, described: str) -> None:
    assert describe_browser(user_agent) == described


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("not an address", "unknown"),
        (None, "unknown"),
    ],
)
def test_network_of_is_the_slash_24_or_48(address: str | None, network: str) -> None:
    assert network_of(address) == network
