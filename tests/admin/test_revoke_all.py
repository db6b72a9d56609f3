"""The admin's "Revoke every token…" (Signing keys page): the twin of `idp tokens revoke-all`,
behind a confirmation, audited."""

from __future__ import annotations

from typing import Any

from idp.identity.models import AuditEvent
from tests.admin.conftest import AdminBrowser, audit_of, text_of
from tests.conftest import CodeFlow


def test_an_admin_revokes_every_token_after_confirming__rfc7009_2_1(
    admin: AdminBrowser, website: Any
) -> None:
    flow = CodeFlow(admin.browser, website[0], website[1])
    tokens = flow.tokens()
    assert 'href="/admin/tokens/revoke-all"' in text_of(admin.get("/admin/keys"))

    page = admin.get("/admin/tokens/revoke-all")
    assert page.status_code == 200
    assert "Revoke every token?" in text_of(page)
    assert flow.refresh(tokens["refresh_token"]).status_code == 200  # nothing happened yet

    fresh = flow.tokens()
    response = admin.submit("/admin/tokens/revoke-all", {})
    assert response.status_code == 302, text_of(response)[:300]
    assert response.headers["Location"].endswith("/admin/keys")

    refreshed = flow.refresh(fresh["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    headers = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert admin.browser.get("/oauth/userinfo", headers=headers).status_code == 401
    (event,) = audit_of("admin.tokens_revoke_all")
    assert isinstance(event, AuditEvent) and event.actor_type == "admin"
    assert event.actor_id == admin.account.id


def test_revoke_all_needs_the_confirmation_form(admin: AdminBrowser, website: Any) -> None:
    flow = CodeFlow(admin.browser, website[0], website[1])
    tokens = flow.tokens()
    refused = admin.browser.post("/admin/tokens/revoke-all", data={})
    assert refused.status_code in (200, 400)
    assert audit_of("admin.tokens_revoke_all") == []
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
    assert admin.get("/admin/keys").status_code == 200
