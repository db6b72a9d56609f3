"""Static files: one URL per content (a hash), cached for a year, compressed; HTML compressed only
when no other site can have asked for it (BREACH); a favicon without a 404."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path
from typing import Any

import brotli
import pytest
from flask.testing import FlaskClient

from idp.config import RESOURCE_ROOT
from idp.ui.assets import StaticDigests

STATIC = RESOURCE_ROOT / "static"
ONE_YEAR = "max-age=31536000"


def _static_links(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_pages_link_static_files_by_content_hash__rfc_8246(client: FlaskClient) -> None:
    links = _static_links(client.get("/login").get_data(as_text=True))
    assert {link.split("?")[0] for link in links} >= {"/static/style.css", "/static/favicon.svg"}
    for link in links:
        path, _, query = link.partition("?v=")
        content = (STATIC / path.removeprefix("/static/")).read_bytes()
        assert query == hashlib.sha256(content).hexdigest()[:16], link
        response = client.get(link)
        assert response.status_code == 200
        cache = response.headers["Cache-Control"]
        assert ONE_YEAR in cache and "immutable" in cache and "public" in cache


@pytest.mark.parametrize("query", ["", "?v=0000000000000000"])
def test_a_static_url_without_the_current_hash_is_revalidated(
    client: FlaskClient, query: str
) -> None:
    response = client.get("/static/style.css" + query)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert "immutable" not in response.headers["Cache-Control"]


def test_the_hash_follows_the_content(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("a { color: red }")
    digests = StaticDigests(str(tmp_path))
    before = digests.digest("a.css")
    (tmp_path / "a.css").write_text("a { color: blue; }")
    assert digests.digest("a.css") not in (None, before)
    assert digests.digest("../a.css") is None and digests.digest("missing.css") is None


@pytest.mark.parametrize(
    ("encoding", "decode"), [("br", brotli.decompress), ("gzip", gzip.decompress)]
)
@pytest.mark.parametrize("name", ["style.css", "admin/admin.css", "favicon.svg"])
def test_static_files_are_compressed__rfc_9110_8_4(
    client: FlaskClient, encoding: str, decode: Any, name: str
) -> None:
    response = client.get(f"/static/{name}", headers={"Accept-Encoding": encoding})
    original = (STATIC / name).read_bytes()
    if len(original) < 500:  # smaller than a packet: left alone
        assert "Content-Encoding" not in response.headers
        return
    assert response.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in response.headers["Vary"]
    assert decode(response.data) == original
    assert int(response.headers["Content-Length"]) == len(response.data) < len(original)


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_html_is_compressed_when_this_site_asked_for_it(client: FlaskClient, site: str) -> None:
    response = client.get(
        "/login", headers={"Accept-Encoding": "br, gzip", "Sec-Fetch-Site": site}
    )
    assert response.headers["Content-Encoding"] == "br"
    assert "<h1>" in brotli.decompress(response.data).decode()


@pytest.mark.parametrize("site", ["cross-site", "same-site", None])
def test_html_reflecting_another_sites_input_is_not_compressed__breach(
    client: FlaskClient, site: str | None
) -> None:
    headers = {"Accept-Encoding": "br, gzip"}
    if site:
        headers["Sec-Fetch-Site"] = site
    response = client.get("/login?next=/csrf_token%3Dguess", headers=headers)
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    assert {"sec-fetch-site", "accept-encoding"} <= {v.lower() for v in response.vary}


def test_token_responses_are_never_compressed(client: FlaskClient) -> None:
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"},
        headers={"Accept-Encoding": "br, gzip", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.is_json and "Content-Encoding" not in response.headers


def test_favicon_is_served_without_a_redirect(client: FlaskClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml" and response.data.startswith(b"<svg")
    assert 'rel="icon"' in client.get("/login").get_data(as_text=True)
