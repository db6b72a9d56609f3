"""A NUL character in the admin's search, in ids in admin paths and in admin forms: each was a
500 on PostgreSQL (its text cannot hold U+0000). The request guard (idp/input_guard.py) answers
400 with the error page, and nothing is written."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.admin.conftest import AdminBrowser
from tests.security.test_hostile_input import table_counts


def assert_page_400(response: Any) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/html"
    assert response.headers["X-Request-Id"] in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts?q=138\x00",
        "/admin/merge?a=x\x00&b=y",
        "/admin/merge?a=x&q=\x00",
        "/admin/accounts/acc\x00unt",
        "/admin/accounts/acc\x00unt/disable",
        "/admin/accounts/acc\x00unt/sessions/ab\x00/end",
        "/admin/accounts/acc\x00unt/tokens/ab\x00/revoke",
        "/admin/clients/cl\x00ent",
        "/admin/clients/cl\x00ent/rotate-secret",
        "/admin/keys/k\x00d/retire",
        "/admin/events?page=1\x00",
    ],
)
def test_nul_in_admin_search_and_path_ids_shows_the_error_page(
    admin: AdminBrowser, url: str
) -> None:
    path, _, query = url.partition("?")
    before = table_counts()
    assert_page_400(admin.get(quote(path) + "?" + quote(query, safe="=&")))
    assert table_counts() == before


@pytest.mark.parametrize(
    ("page", "fields"),
    [
        ("/admin/clients/new", {"name": "Sho\x00p", "redirect_uris": "https://shop.example/cb"}),
        ("/admin/clients/new", {"name": "Shop", "redirect_uris": "https://shop.example/\x00"}),
        ("/admin/wechat-apps", {"kind": "miniprogram", "appid": "wx\x00", "secret": "s"}),
    ],
)
def test_nul_in_admin_forms_shows_the_error_page(
    admin: AdminBrowser, page: str, fields: dict[str, str]
) -> None:
    before = table_counts()
    assert_page_400(admin.submit(page, fields))
    assert table_counts() == before


def test_nul_in_an_admin_reason_shows_the_error_page(
    admin: AdminBrowser, make_user: Any
) -> None:
    account = make_user(phone="+8613800138009")
    before = table_counts()
    url = f"/admin/accounts/{account.id}/disable"
    assert_page_400(admin.submit(url, {"reason": "fra\x00d"}))
    assert table_counts() == before
    assert account.status == "active"
