"""Admin pages are never stored by a cache (issue 10, item 18; RFC 9111 §5.2.2.5)."""

from typing import Any

from tests.admin.conftest import AdminBrowser


def test_admin_pages_are_no_store__rfc9111_5_2_2_5(admin: AdminBrowser, make_user: Any) -> None:
    alice = make_user(phone="+8613800138000")
    for path in ("/admin/", "/admin/accounts", f"/admin/accounts/{alice.id}", "/admin/clients"):
        page = admin.get(path)
        assert page.status_code == 200, path
        assert page.mimetype == "text/html"
        assert "no-store" in page.headers.get("Cache-Control", ""), path
