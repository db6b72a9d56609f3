"""The data dictionary page and an admin's edit of an account's claims (validated on write)."""

from __future__ import annotations

import json
from html import unescape
from typing import Any

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.identity.claims import user_claims
from idp.identity.models import AuditEvent
from tests.admin.conftest import AdminBrowser

DECLARED = [{"name": "member_level", "type": "integer", "scope": "profile",
             "writers": ["admin"], "description": "Loyalty level"},
            {"name": "store_id", "type": "string", "scope": "profile", "writers": ["user"]}]


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["IDP_CUSTOM_CLAIMS"] = json.dumps(DECLARED)
    app_config["IDP_CLAIM_PRIORITY"] = {"nickname": ["wechat", "user", "website"]}
    return app_config


def test_data_dictionary_lists_declarations_and_the_rule(admin: AdminBrowser) -> None:
    page = admin.get("/admin/claims")
    assert page.status_code == 200
    html = unescape(page.get_data(as_text=True))
    for name in ("nickname", "address", "gender", "birthdate", "member_level", "store_id"):
        assert f'id="claim-{name}"' in html
    row = html.split('id="claim-nickname"')[1].split("</tr>")[0]
    assert "WeChat > edited by the user > website" in row
    row = html.split('id="claim-member_level"')[1].split("</tr>")[0]
    assert "operator-defined" in row and "integer" in row and "Loyalty level" in row
    row = html.split('id="claim-name"')[1].split("</tr>")[0]
    assert "edited by the user > admin > management API > website > WeChat" in row


def test_admin_edits_claims_validated_on_write(admin: AdminBrowser, user: Any) -> None:
    url = f"/admin/accounts/{user.id}/claims"
    refused = admin.submit(url, {"claim-member_level": "gold", "claim-name": "Alice"})
    assert refused.status_code == 400
    assert "must be an integer" in refused.get_data(as_text=True)
    assert "member_level" not in user_claims(user, "openid profile")

    saved = admin.submit(url, {"claim-member_level": "4", "claim-name": "Alice",
                               "claim-address": "1 Nanjing Road, Shanghai",
                               "claim-birthdate": "1990-05-01"})
    assert saved.status_code == 302
    db.session.expire_all()
    claims = user_claims(user, "openid profile address")
    assert claims["member_level"] == 4
    assert claims["address"] == {"formatted": "1 Nanjing Road, Shanghai"}
    assert claims["birthdate"] == "1990-05-01"
    assert "store_id" not in unescape(admin.get(url).get_data(as_text=True))  # user-only claim
    actions = db.session.scalars(sa.select(AuditEvent.details).where(
        AuditEvent.action == "claim_written", AuditEvent.account_id == user.id)).all()
    assert {details["claim"] for details in actions} == {"member_level", "address", "birthdate"}
    assert "member_level" in admin.get(f"/admin/accounts/{user.id}").get_data(as_text=True)


def test_admin_declares_a_claim_then_edits_and_serves_it__oidc_core_5_4(
        admin: AdminBrowser, user: Any) -> None:
    refused = admin.submit("/admin/claims", {"name": "nick_name", "type": "string",
                                             "scope": "profile", "writers": ["admin"]})
    assert refused.status_code == 400
    assert "already a claim" in unescape(refused.get_data(as_text=True))
    refused = admin.submit("/admin/claims", {"name": "vip", "type": "float",
                                             "scope": "profile", "writers": ["admin"]})
    assert refused.status_code == 400

    declared = admin.submit("/admin/claims", {
        "name": "store_region", "type": "string", "scope": "address",
        "writers": ["admin", "api"], "description": "Region of the home store"})
    assert declared.status_code == 302
    page = unescape(admin.get("/admin/claims").get_data(as_text=True))
    row = page.split('id="claim-store_region"')[1].split("</tr>")[0]
    assert "admin, api" in row and "Region of the home store" in row
    again = admin.submit("/admin/claims", {"name": "store_region", "type": "string",
                                           "scope": "profile", "writers": ["admin"]})
    assert again.status_code == 400  # one name per field

    saved = admin.submit(f"/admin/accounts/{user.id}/claims", {"claim-store_region": "East"})
    assert saved.status_code == 302
    db.session.expire_all()
    assert user_claims(user, "openid address")["store_region"] == "East"
    assert "store_region" not in user_claims(user, "openid profile")
    audit = db.session.scalars(sa.select(AuditEvent.details).where(
        AuditEvent.action == "claim_declared")).all()
    assert [details["claim"] for details in audit] == ["store_region"]
