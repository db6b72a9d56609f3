"""Pages for a signed-in person are never stored by a browser or proxy cache (issue 10, item 18):
`Cache-Control: no-store` (RFC 9111 §5.2.2.5)."""

from typing import Any

from tests.conftest import CodeFlow


def no_store(response: Any) -> bool:
    directives = {d.strip() for d in response.headers.get("Cache-Control", "").split(",")}
    return response.mimetype == "text/html" and "no-store" in directives


def test_account_consent_and_logout_pages_are_no_store__rfc9111_5_2_2_5(flow: CodeFlow) -> None:
    account = flow.browser.get("/account")
    consent = flow.browser.get("/oauth/authorize", query_string=flow.authorize_params())
    logout = flow.browser.get("/oauth/logout")

    assert account.status_code == 200 and no_store(account)
    assert consent.status_code == 200 and b'value="allow"' in consent.data and no_store(consent)
    assert logout.status_code == 200 and b'value="logout"' in logout.data and no_store(logout)


def test_public_metadata_keeps_its_own_caching(client: Any) -> None:
    discovery = client.get("/.well-known/openid-configuration")
    assert discovery.headers["Cache-Control"] == "public, max-age=300"
