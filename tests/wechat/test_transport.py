"""The WeChat client's transport (`idp.wechat.transport`, libcurl) against real loopback servers:
the environment's proxy and CA bundle honoured as requests honoured them (HTTPS_PROXY /
HTTP_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE), connections kept alive per thread
and process, and no redirect followed, no cookie kept, no request sent twice (a js_code must
reach WeChat at most once)."""

from __future__ import annotations

import datetime
import gc
import os
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp.wechat.client import WeChatClient
from idp.wechat.errors import UpstreamUnavailable
from idp.wechat.token_store import MemoryAccessTokenStore
from idp.wechat.transport import CurlPool, Headers, ca_bundle, proxy_for

from .conftest import MINI_APPID, MINI_SECRET
from .loopback_http import ANSWER, ANSWER_AND_CLOSE, HANG_UP, Answer, LoopbackServer, Seen

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                   "ALL_PROXY", "no_proxy", "NO_PROXY")  # fmt: skip
TOKEN_ANSWER = Answer(body=b'{"access_token": "app-token", "expires_in": 7200}')


def wechat_client(api_base: str, **options: Any) -> WeChatClient:
    options.setdefault("timeout", (1.0, 2.0))
    return WeChatClient(api_base, MINI_APPID, MINI_SECRET, MemoryAccessTokenStore(), **options)


@pytest.fixture(autouse=True)
def no_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as loopback:
        yield loopback


# --- proxies ------------------------------------------------------------------------------------


def test_a_proxy_in_the_environment_carries_the_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        # No such host: only a proxy can answer for it.
        with closing(wechat_client("http://api.wechat.invalid")) as client:
            assert client.code_to_session("js-code-1").openid == "o-loopback"
    [seen] = proxy.seen
    assert seen.request_line.startswith("GET http://api.wechat.invalid/sns/jscode2session?")
    assert "js_code=js-code-1" in seen.request_line


def test_https_goes_through_the_https_proxy_as_a_tunnel(monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackServer() as proxy:
        proxy.answer = Answer(403, {}, b"")  # a proxy that refuses: nothing leaves the machine
        monkeypatch.setenv("HTTPS_PROXY", proxy.base_url)
        with closing(wechat_client("https://api.weixin.qq.com")) as client:
            with pytest.raises(UpstreamUnavailable):
                client.code_to_session("js-code-1")
    assert [seen.request_line for seen in proxy.seen] == ["CONNECT api.weixin.qq.com:443 HTTP/1.1"]


def test_no_proxy_names_a_host_reached_directly(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert proxy_for(server.base_url) == ""
        with closing(wechat_client(server.base_url)) as client:
            client.code_to_session("js-code-1")
    assert proxy.seen == []
    assert server.seen[0].request_line.startswith("GET /sns/jscode2session?")


def test_the_proxy_is_read_once_and_libcurl_reads_none_itself(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer() as proxy, closing(wechat_client(server.base_url)) as client:
        # libcurl would read http_proxy by itself if the transport left the choice to it.
        monkeypatch.setenv("http_proxy", proxy.base_url)
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        client.code_to_session("js-code-1")
    assert proxy.seen == [] and len(server.seen) == 1


# --- TLS ----------------------------------------------------------------------------------------


def test_the_ca_bundle_comes_from_the_environment_or_certifi(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert ca_bundle() == certifi.where()
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/curl.crt")
    assert ca_bundle() == "/etc/ssl/certs/curl.crt"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    assert ca_bundle() == "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A CA of the test's own (in no bundle) and a server certificate it signed for
    `localhost` only: (CA file, server certificate and key file)."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "transport test CA")])

    def certificate(
        subject: x509.Name, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
        )  # fmt: skip

    ca = (
        certificate(ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    server = (
        certificate(server_name, key.public_key())
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, server_file = folder / "ca.pem", folder / "server.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_file.write_bytes(
        server.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, server_file


@pytest.fixture
def tls_server(certificates: tuple[Path, Path]) -> Iterator[LoopbackServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates[1])
    with LoopbackServer(tls=context) as loopback:
        yield loopback


def localhost(server: LoopbackServer) -> str:
    return server.base_url.replace("127.0.0.1", "localhost")


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_tls_is_verified_against_the_bundle_of_the_environment(
    tls_server: LoopbackServer,
    certificates: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv(variable, str(certificates[0]))
    with closing(wechat_client(localhost(tls_server))) as client:
        assert client.code_to_session("js-code-1").openid == "o-loopback"


def test_a_certificate_of_an_unknown_ca_is_refused(
    tls_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)  # certifi's bundle: not our CA
    with closing(wechat_client(localhost(tls_server))) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            client.code_to_session("js-code-1")
    assert "PEER_FAILED_VERIFICATION" in str(caught.value) and tls_server.seen == []


def test_a_certificate_for_another_host_is_refused(
    tls_server: LoopbackServer, certificates: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates[0]))
    with closing(wechat_client(tls_server.base_url)) as client:  # 127.0.0.1: not in the cert
        with pytest.raises(UpstreamUnavailable):
            client.code_to_session("js-code-1")
    assert tls_server.seen == []


# --- what is never done: redirects, cookies, a second sending, waiting too long -----------------


def test_a_redirect_is_not_followed(server: LoopbackServer) -> None:
    with LoopbackServer() as elsewhere:
        server.answer = Answer(302, {"Location": f"{elsewhere.base_url}/sns/jscode2session"}, b"")
        with closing(wechat_client(server.base_url)) as client:
            with pytest.raises(UpstreamUnavailable, match="HTTP 302"):
                client.code_to_session("js-code-1")
    assert len(server.seen) == 1 and elsewhere.seen == []


def test_no_cookie_is_kept_from_one_call_for_the_next(server: LoopbackServer) -> None:
    server.answer = Answer(headers={"Content-Type": "text/plain", "Set-Cookie": "sid=1; Path=/"})
    with closing(wechat_client(server.base_url)) as client:
        client.code_to_session("js-code-1")
        client.code_to_session("js-code-2")
    assert [seen.headers.get("Cookie") for seen in server.seen] == [None, None]


def test_a_post_leaves_nothing_behind_for_the_next_get(server: LoopbackServer) -> None:
    server.respond = lambda seen: TOKEN_ANSWER if "stable_token" in seen.request_line else Answer()
    with closing(wechat_client(server.base_url)) as client:
        client.access_token()
        client.code_to_session("js-code-1")
    post, get = server.seen
    assert post.request_line.startswith("POST /cgi-bin/stable_token ")
    assert post.headers["Content-Type"] == "application/json" and "Expect" not in post.headers
    assert get.request_line.startswith("GET /sns/jscode2session?")
    assert get.body == b"" and "Content-Type" not in get.headers
    assert "Content-Length" not in get.headers
    assert post.client_port == get.client_port  # and on the same connection


def test_an_answer_later_than_the_timeout_is_upstream_unavailable(server: LoopbackServer) -> None:
    server.delay = 1.0
    started = time.monotonic()
    with closing(wechat_client(server.base_url, timeout=(0.5, 0.3))) as client:
        with pytest.raises(UpstreamUnavailable, match="OPERATION_TIMEDOUT") as caught:
            client.code_to_session("js-code-1")
    assert time.monotonic() - started < 0.9
    message = str(caught.value)
    assert "/sns/jscode2session: libcurl" in message and "js-code" not in message
    assert len(server.seen) == 1


def test_a_connection_lost_after_the_request_is_not_sent_again(server: LoopbackServer) -> None:
    """libcurl would resend on a fresh connection by itself (measured); WeChat may have spent
    the code by then, so the call fails instead."""
    server.plan = [ANSWER, HANG_UP]
    with closing(wechat_client(server.base_url)) as client:
        client.code_to_session("js-code-1")
        with pytest.raises(UpstreamUnavailable, match="not resent"):
            client.code_to_session("js-code-2")
        assert [seen.request_line.count("js_code=js-code-2") for seen in server.seen] == [0, 1]
        client.code_to_session("js-code-3")  # the next call connects anew
    assert len(set(server.ports())) == 2


# --- kept-alive connections ------------------------------------------------------------------


def test_calls_of_one_thread_share_one_connection(server: LoopbackServer) -> None:
    with closing(wechat_client(server.base_url)) as client:
        for number in range(3):
            client.code_to_session(f"js-code-{number}")
    assert len(server.seen) == 3 and len(set(server.ports())) == 1


def test_a_connection_the_server_dropped_while_idle_is_replaced(server: LoopbackServer) -> None:
    server.plan = [ANSWER_AND_CLOSE]
    with closing(wechat_client(server.base_url)) as client:
        client.code_to_session("js-code-1")
        time.sleep(0.2)  # the server's close arrives while the connection is idle
        client.code_to_session("js-code-2")
    assert len(server.seen) == 2  # each request sent once
    assert len(set(server.ports())) == 2


def test_threads_use_handles_of_their_own(server: LoopbackServer) -> None:
    pool = CurlPool(server.base_url)
    both_called = threading.Barrier(2, timeout=5)
    failures: list[BaseException] = []

    def calls(name: str) -> None:
        try:
            client = wechat_client(server.base_url, http=pool)
            client.code_to_session(f"{name}-1")
            both_called.wait()  # both threads alive: two thread ids, two handles
            client.code_to_session(f"{name}-2")
        except BaseException as failure:
            failures.append(failure)

    threads = [threading.Thread(target=calls, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    pool.close()
    assert failures == []
    by_port: dict[int, set[str]] = {}
    for seen in server.seen:
        by_port.setdefault(seen.client_port, set()).add(_js_code(seen).split("-")[0])
    assert sorted(by_port.values(), key=sorted) == [{"a"}, {"b"}]


def test_a_forked_child_connects_anew_and_leaves_the_parents_connection_alone(
    tls_server: LoopbackServer, certificates: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS: freeing an inherited handle would end the parent's TLS session (libcurl's
    close_notify on the shared socket), and the server would drop the parent's connection."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates[0]))
    pool = CurlPool(localhost(tls_server))
    client = wechat_client(localhost(tls_server), http=pool)
    client.code_to_session("parent-1")
    child = os.fork()
    if child == 0:
        status = 1
        try:
            client.code_to_session("child-1")
            del client, pool  # the inherited handle is freed, as at the child's exit
            gc.collect()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    time.sleep(0.2)  # a close_notify, had one been sent, would have closed the connection
    client.code_to_session("parent-2")
    pool.close()
    ports = dict(zip([_js_code(seen) for seen in tls_server.seen], tls_server.ports(), strict=True))
    assert ports["parent-1"] == ports["parent-2"] != ports["child-1"]


def test_headers_are_the_final_answers_by_any_case() -> None:
    raw = (
        b"HTTP/1.1 200 Connection established\r\nVia: proxy\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\n"
    )
    headers = Headers(raw)
    assert headers["content-type"] == headers.get("Content-Type") == "image/jpeg"
    assert "Via" not in headers and len(headers) == 2


def _js_code(seen: Seen) -> str:
    return seen.request_line.split("js_code=", 1)[1].split("&", 1)[0].split(" ", 1)[0]
