"""An admin declares a claim with a scope of its own (issue 16): the data dictionary lists every
scope and what it releases, and the client form registers clients for the new scope."""

from __future__ import annotations

import json
from typing import Any

import pytest

from idp.extensions import db
from idp.oidc.models import Client
from tests.admin.conftest import AdminBrowser, text_of
from tests.admin.test_client_auth_method import SERVICE, created_credentials

MEMBER_LEVEL = {"name": "member_level", "type": "integer", "scope": "member",
                "writers": ["admin"], "scope_description": "See your membership level"}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["IDP_CUSTOM_CLAIMS"] = json.dumps([MEMBER_LEVEL])
    return app_config


def scope_row(page: str, scope: str) -> str:
    return page.split(f'id="scope-{scope}"')[1].split("</tr>")[0]


def test_the_data_dictionary_lists_every_scope_and_what_it_releases(
    admin: AdminBrowser,
) -> None:
    page = text_of(admin.get("/admin/claims"))
    member = scope_row(page, "member")
    assert "member_level" in member and "operator-defined" in member
    assert "See your membership level" in member
    assert "gender" in scope_row(page, "profile") and "operator-defined" not in scope_row(
        page, "profile")
    assert "phone_number" in scope_row(page, "phone")
    assert 'id="claim-member_level"' in page


def test_admin_declares_a_claim_with_a_new_scope_then_registers_a_client_for_it(
    admin: AdminBrowser,
) -> None:
    refused = admin.submit("/admin/claims", {"name": "store_id", "type": "string",
                                             "scope": "offline_access", "writers": ["admin"]})
    assert refused.status_code == 400 and "scope must be" in text_of(refused)
    refused = admin.submit("/admin/claims", {"name": "store_id", "type": "string",
                                             "scope": "two words", "writers": ["admin"]})
    assert refused.status_code == 400

    declared = admin.submit("/admin/claims", {"name": "store_id", "type": "string",
                                              "scope": "stores", "writers": ["admin"],
                                              "scope_description": "See your home store"})
    assert declared.status_code == 302
    row = scope_row(text_of(admin.get("/admin/claims")), "stores")
    assert "store_id" in row and "See your home store" in row  # the consent page's text

    form = text_of(admin.get("/admin/clients/new"))
    assert "<code>stores</code>" in form and "<code>member</code>" in form
    created = admin.submit("/admin/clients/new", {
        **SERVICE, "grant_types": ["authorization_code"],
        "redirect_uris": "https://rp.example/callback", "scope": "openid stores member"})
    client_id, _ = created_credentials(created)
    assert db.session.get(Client, client_id).scope == "openid stores member"

    unknown = admin.submit("/admin/clients/new", {**SERVICE, "scope": "openid shops"})
    assert "unknown scopes: shops" in text_of(unknown)  # the form again, with the reason
    assert db.session.query(Client).filter_by(name=SERVICE["name"]).count() == 1
