"""Server-to-server requests the IdP makes on a relying party's say-so (events, back-channel
logout) may not reach the IdP's own network: link-local (cloud metadata at 169.254.169.254),
private, loopback, and the same addresses in IPv4-mapped IPv6 form (`::ffff:a9fe:a9fe`) are
refused, unless the operator lists the network in `IDP_OUTBOUND_ALLOWED_NETWORKS`.

Checked twice: when the URI is registered (an IP literal, or a name that resolves), and at
delivery, where the name is resolved again, every address checked, and the connection made to
the checked address (`PinnedAddressAdapter`), so a DNS answer that changes in between (DNS
rebinding) cannot redirect the request.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundRefused(ValueError):
    """The URI points at an address the IdP may not call."""


def parse_networks(value: str | Iterable[str] | None) -> tuple[Network, ...]:
    """`IDP_OUTBOUND_ALLOWED_NETWORKS`: CIDRs or addresses, comma- or space-separated."""
    if not value:
        return ()
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)


def _unmapped(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return mapped
    return address


def check_address(address: str, allowed: tuple[Network, ...]) -> Address:
    """The address, if the IdP may call it; else OutboundRefused."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    real = _unmapped(parsed)
    if any(real in network or parsed in network for network in allowed):
        return parsed
    if not real.is_global or real.is_multicast:
        raise OutboundRefused(f"{address} is not a public address")
    return parsed


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def check_uri_at_registration(uri: str, allowed: tuple[Network, ...]) -> None:
    """An IP literal is checked as it stands; a name is resolved when it can be (a name that
    does not resolve yet is checked at delivery)."""
    host, port = _host_and_port(uri)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve(host, port)
        except OSError:
            return
    for address in addresses:
        check_address(address, allowed)


def pinned_address(uri: str, allowed: tuple[Network, ...]) -> str:
    """Resolves the URI's host now and returns the address to connect to, every address of
    the name having passed the check (a name that resolves to one refused address is refused)."""
    host, port = _host_and_port(uri)
    try:
        addresses = resolve(host, port)
    except OSError as failure:
        raise OutboundRefused(f"{host} does not resolve") from failure
    for address in addresses:
        check_address(address, allowed)
    return addresses[0]


def _host_and_port(uri: str) -> tuple[str, int]:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"not an http(s) URL: {uri!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as failure:
        raise OutboundRefused(f"bad port in {uri!r}") from failure
    return parts.hostname, port


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to the address checked just before, not to whatever the name resolves to by
    then; TLS still verifies the certificate against the name (SNI and hostname check)."""

    def __init__(self, allowed: tuple[Network, ...]) -> None:
        super().__init__(max_retries=0)
        self.allowed = allowed

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        request.pinned_address = pinned_address(request.url or "", self.allowed)  # type: ignore[attr-defined]
        if "Host" not in request.headers:
            netloc = urlsplit(request.url or "").netloc.rsplit("@", 1)[-1]
            request.headers["Host"] = netloc
        return super().send(request, *args, **kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        address = getattr(request, "pinned_address", None)
        if address is not None:
            name = host_params["host"]
            host_params["host"] = address
            if host_params["scheme"] == "https":
                pool_kwargs["server_hostname"] = name
                pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs


def guarded_session(allowed: tuple[Network, ...]) -> requests.Session:
    """A requests session that only reaches checked addresses."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the pin must hold
    adapter = PinnedAddressAdapter(allowed)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
