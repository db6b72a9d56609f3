"""What the mini-program's confirm page shows about the browser asking to be signed in: which
site, which browser, roughly where (the network, never the full address). It is the user's
defence against a relayed code: "Chrome on Windows, 198.51.100.0/24" when they sit at a Mac
is a reason to refuse."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qs, urlsplit

from idp.extensions import db
from idp.oidc.models import Client

# First match wins: Edge and Opera carry "Chrome" too, Chrome carries "Safari".
BROWSERS = (
    ("WeChat", r"MicroMessenger/([\d.]+)"),
    ("Edge", r"Edg(?:e|A|iOS)?/([\d.]+)"),
    ("Opera", r"OPR/([\d.]+)"),
    ("Firefox", r"(?:Firefox|FxiOS)/([\d.]+)"),
    ("Chrome", r"(?:Chrome|CriOS)/([\d.]+)"),
    ("Safari", r"Version/([\d.]+).*Safari/"),
)
SYSTEMS = (
    ("Android", r"Android"),
    ("iOS", r"iPhone|iPad|iPod"),
    ("Windows", r"Windows"),
    ("macOS", r"Mac OS X|Macintosh"),
    ("ChromeOS", r"CrOS"),
    ("Linux", r"Linux"),
)
IPV4_PREFIX = 24
IPV6_PREFIX = 48


def describe_browser(user_agent: str) -> str:
    """"Chrome 120 on Linux"; "a browser" when nothing is recognised."""
    name = next(
        (f"{label} {m.group(1).split('.')[0]}" for label, pattern in BROWSERS
         if (m := re.search(pattern, user_agent))),
        "",
    )
    system = next((label for label, pattern in SYSTEMS if re.search(pattern, user_agent)), "")
    if name and system:
        return f"{name} on {system}"
    return name or system or "a browser"


def network_of(address: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) around the address: roughly where, not who."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def site_for(next_url: str, issuer_host: str) -> str:
    """The relying party whose sign-in is waiting (from the pending authorization request), or
    the IdP itself."""
    parts = urlsplit(next_url)
    client_id = parse_qs(parts.query).get("client_id", [""])[0]
    if parts.path.endswith("/oauth/authorize") and client_id:
        client = db.session.get(Client, client_id[:64])
        if client is not None:
            return f"{client.name} ({issuer_host})"[:200]
    return issuer_host[:200]
