"""The admin client form never gives a client of the login flow a management API scope (issue 23
item 3): `idp:` scopes are for a client whose only grant type is client_credentials, on creation
and on every edit."""

from __future__ import annotations

from typing import Any

from idp.extensions import db
from idp.oidc.models import Client
from tests.admin.conftest import AdminBrowser, text_of

WEBSITE = {
    "name": "Shop",
    "redirect_uris": "https://shop.example/cb",
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid idp:accounts.write",
    "events_uri": "",
    "post_logout_redirect_uris": "",
}


def test_the_form_refuses_idp_scopes_for_a_login_flow_client__issue23_3(
    admin: AdminBrowser,
) -> None:
    response = admin.submit("/admin/clients/new", WEBSITE)
    assert "only for a client whose sole grant type" in text_of(response)
    assert db.session.query(Client).filter_by(name="Shop").count() == 0


def test_an_edit_cannot_add_idp_scopes_or_a_login_grant__issue23_3(
    admin: AdminBrowser, make_client: Any
) -> None:
    shop, _ = make_client(name="Shop", redirect_uris=["https://shop.example/cb"], scope="openid")
    admin.submit(f"/admin/clients/{shop.client_id}", WEBSITE)
    service, _ = make_client(name="CRM", grant_types=["client_credentials"],
                             scope="idp:accounts.read")
    admin.submit(f"/admin/clients/{service.client_id}", {
        **WEBSITE, "name": "CRM", "scope": "idp:accounts.read"})
    db.session.expire_all()
    assert db.session.get(Client, shop.client_id).scope == "openid"
    assert db.session.get(Client, service.client_id).grant_types == ["client_credentials"]
