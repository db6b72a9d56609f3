"""The WeChat client's HTTP transport: libcurl (pycurl) handles kept alive per process, thread
and API base.

libcurl rather than urllib3 for CPU: a kept-alive GET to a loopback server costs ~100 µs of
client CPU through pycurl against ~260–375 µs through a urllib3 PoolManager, and the WeChat call
was the largest part of a mini-program login besides the cryptography.

What the urllib3 transport did is kept: TLS verified against REQUESTS_CA_BUNDLE (or
CURL_CA_BUNDLE, as requests reads them) or certifi's bundle; the environment's proxy for the
base (HTTPS_PROXY / HTTP_PROXY, NO_PROXY), read once per pool; no redirect followed, no cookie
kept, and no request sent twice — a js_code or a phone code must reach WeChat at most once.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.request import getproxies, proxy_bypass

import certifi
import pycurl

# A POST carries JSON; "Expect:" keeps libcurl from waiting for a 100-continue (and from
# resending the request without it after a 417).
JSON_POST_HEADERS = ["Content-Type: application/json", "Expect:"]


class TransportFailure(Exception):
    """No usable HTTP answer. The message is a short reason, never the URL: its query holds
    the app secret and the codes."""


class Headers(Mapping[str, str]):
    """A response's header fields by case-insensitive name (the last of a repeated one)."""

    __slots__ = ("_fields",)

    def __init__(self, raw: bytes) -> None:
        # Only the final answer's block: a proxy's CONNECT answer may come before it.
        block = raw.rsplit(b"\r\nHTTP/", 1)[-1]
        fields: dict[str, str] = {}
        for line in block.split(b"\r\n")[1:]:
            name, colon, value = line.partition(b":")
            if colon:
                fields[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
        self._fields = fields

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Headers
    body: bytes


class CurlPool:
    """Kept-alive connections to one API base: a libcurl handle per process and thread (a
    handle is not thread-safe; libcurl keeps the connection inside it), made on first use.
    Keyed by the process id, so a forked child opens its own connections instead of sharing the
    parent's sockets, and leaves the handles it inherited alone (`_disown_inherited_sockets`)."""

    __slots__ = ("_ca_bundle", "_proxy", "_handles", "__weakref__")

    def __init__(self, api_base: str) -> None:
        self._ca_bundle = ca_bundle()
        self._proxy = proxy_for(api_base)
        self._handles: dict[tuple[int, int], pycurl.Curl] = {}
        _POOLS.add(self)

    def request(
        self, method: str, url: str, json_body: bytes | None, timeout: tuple[float, float]
    ) -> Response:
        """One exchange on this thread's handle; `TransportFailure` when there is no answer.

        libcurl has no per-read timeout, so `timeout` (connect, read) becomes a connect timeout
        and a deadline of `read` seconds for the whole exchange, connecting included: on a kept
        connection (the usual case) the wait for an answer is bounded as urllib3's read timeout
        bounded it, and a server that trickles its answer cannot hold a login for longer."""
        curl = self._handle()
        curl.reset()  # every option back to its default; the live connection stays
        body, header_block = io.BytesIO(), io.BytesIO()
        self._set_options(curl, url, timeout)
        curl.setopt(pycurl.WRITEDATA, body)
        curl.setopt(pycurl.WRITEHEADER, header_block)
        if method == "POST":
            curl.setopt(pycurl.POSTFIELDS, json_body or b"")
            curl.setopt(pycurl.HTTPHEADER, JSON_POST_HEADERS)
        elif method != "GET":
            raise ValueError(f"unsupported method {method}")
        try:
            curl.perform()
        except pycurl.error as error:
            raise TransportFailure(_reason(error)) from None
        return Response(
            curl.getinfo(pycurl.RESPONSE_CODE), Headers(header_block.getvalue()), body.getvalue()
        )

    def close(self) -> None:
        """Closes this process's handles and their connections; a later call opens anew."""
        pid = os.getpid()
        for key in [key for key in list(self._handles) if key[0] == pid]:
            self._handles.pop(key).close()

    def _handle(self) -> pycurl.Curl:
        key = (os.getpid(), threading.get_ident())
        curl = self._handles.get(key)
        if curl is not None and _kept_connection_closed(curl):
            curl.close()
            curl = None
        if curl is None:
            # Only this thread writes its key; a finished thread's handle serves the next
            # thread given the same id.
            curl = self._handles[key] = pycurl.Curl()
        return curl

    def _set_options(self, curl: pycurl.Curl, url: str, timeout: tuple[float, float]) -> None:
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.NOSIGNAL, 1)  # no SIGALRM for timeouts: threads
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.CAINFO, self._ca_bundle)
        curl.setopt(pycurl.PROXY_CAINFO, self._ca_bundle)
        curl.setopt(pycurl.SSL_VERIFYPEER, 1)
        curl.setopt(pycurl.SSL_VERIFYHOST, 2)
        # Our decision, read once: "" means direct, and libcurl reads no proxy variable itself.
        curl.setopt(pycurl.PROXY, self._proxy)
        curl.setopt(pycurl.NOPROXY, "")
        curl.setopt(pycurl.FOLLOWLOCATION, 0)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, _milliseconds(timeout[0]))
        curl.setopt(pycurl.TIMEOUT_MS, _milliseconds(timeout[1]))
        curl.setopt(pycurl.PREREQFUNCTION, _sent_at_most_once())
        # Not set, on purpose: VERBOSE (it would print the URL, secret and all, to stderr) and
        # COOKIEFILE / COOKIEJAR (without them libcurl keeps no cookie).


def _kept_connection_closed(curl: pycurl.Curl) -> bool:
    """Whether the handle's idle connection has something to read — the server's close, or
    anything else it was not asked for — so it must not carry the next request (urllib3
    looked the same way before each reuse). libcurl looks at idle connections at most once a
    second; within that second it would send on a closed one and then resend the request on a
    new connection, which `_sent_at_most_once` refuses. The handle is replaced instead."""
    descriptor = curl.getinfo(pycurl.ACTIVESOCKET)
    if descriptor == -1:
        return False
    poller = select.poll()
    poller.register(descriptor, select.POLLIN)
    return bool(poller.poll(0))


def _milliseconds(seconds: float) -> int:
    """At least 1: to libcurl, 0 means no timeout at all."""
    return max(1, round(seconds * 1000))


def _sent_at_most_once() -> Callable[..., int]:
    """A pre-request callback for one perform() that lets a single request out. libcurl resends
    a request by itself when a reused connection dies before any answer ("Connection died,
    retrying a fresh connect") — measured: the server got it twice — and WeChat may have spent
    the js_code by then. The second attempt is refused instead (`_reason`)."""
    sent = False

    def before_request(*_connection: object) -> int:
        nonlocal sent
        if sent:
            return pycurl.PREREQFUNC_ABORT
        sent = True
        return pycurl.PREREQFUNC_OK

    return before_request


def _reason(error: pycurl.error) -> str:
    """A short reason: the name of libcurl's error code. libcurl's own message is not used: it
    is free text about the transfer, and nothing may name the URL."""
    code = error.args[0]
    if code == pycurl.E_ABORTED_BY_CALLBACK:
        return "connection lost after the request was sent (not resent)"
    name = _ERROR_NAMES.get(code, "error") if isinstance(code, int) else "error"
    return f"libcurl {name} ({code})"


def ca_bundle() -> str:
    """TLS is verified against REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE (as requests reads them),
    else certifi's bundle."""
    return (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        or certifi.where()
    )  # fmt: skip


def proxy_for(api_base: str) -> str:
    """The environment's proxy for `api_base` (HTTPS_PROXY / HTTP_PROXY, unless NO_PROXY
    names the host), or "" for none."""
    scheme, _, rest = api_base.partition("://")
    proxy = getproxies().get(scheme)
    if proxy and not proxy_bypass(rest.split("/", 1)[0]):
        return proxy
    return ""


def pooled_http(api_base: str) -> CurlPool:
    """This process's pool for one API base, shared by every client and thread: a login reuses
    an open connection instead of a new TCP (and TLS) handshake. Made after the fork (keyed by
    the process id), so no two processes share a socket."""
    key = (os.getpid(), api_base)
    pool = _POOLED.get(key)
    if pool is not None:
        return pool
    with _POOLED_LOCK:
        pool = _POOLED.get(key)
        if pool is None:
            pool = _POOLED[key] = CurlPool(api_base)
    return pool


def _disown_inherited_sockets() -> None:
    """In a forked child, before anything else: each inherited handle's socket now points at
    /dev/null. The child never uses those handles (they belong to the parent's process id), but
    when one is freed — at the latest as the child exits — libcurl ends its TLS session: a
    close_notify written on the socket the parent shares (measured), after which WeChat closes
    the parent's kept connection. A handle that another thread of the parent was using at the
    fork cannot be asked for its socket (pycurl refuses during perform()) and is left as is."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for pool in list(_POOLS):
            for curl in list(pool._handles.values()):
                with contextlib.suppress(pycurl.error):
                    descriptor = curl.getinfo(pycurl.ACTIVESOCKET)
                    if descriptor != -1:
                        os.dup2(devnull, descriptor)
    finally:
        os.close(devnull)


# Every libcurl error code by its name (the first in alphabetical order where pycurl has two).
_ERROR_NAMES = {
    code: name
    for name, code in sorted(vars(pycurl).items(), reverse=True)
    if name.startswith("E_") and not name.startswith(("E_MULTI_", "E_SHARE_"))
}
_POOLED: dict[tuple[int, str], CurlPool] = {}
_POOLED_LOCK = threading.Lock()
_POOLS: weakref.WeakSet[CurlPool] = weakref.WeakSet()
os.register_at_fork(after_in_child=_disown_inherited_sockets)
