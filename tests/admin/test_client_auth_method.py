"""The admin client form registers how a client authenticates (CONTRACT §8,
OIDC Registration §2 `token_endpoint_auth_method`), and the token endpoint then accepts it."""

from __future__ import annotations

import json
import re
from typing import Any

from joserfc.jwk import ECKey, KeySet

from idp.extensions import db
from idp.oidc.models import Client
from tests.admin.conftest import AdminBrowser, audit_of, text_of

SERVICE = {
    "name": "Batch job",
    "redirect_uris": "",
    "grant_types": ["client_credentials"],
    "scope": "openid",
    "events_uri": "",
    "post_logout_redirect_uris": "",
}


def created_credentials(response: Any) -> tuple[str, str | None]:
    html = response.get_data(as_text=True)
    client_id = re.search(r'id="client-id">([^<]+)<', html)
    secret = re.search(r'id="client-secret"[^>]*>([^<]+)<', html)
    assert client_id, html[:1000]
    return client_id.group(1), secret.group(1) if secret else None


def test_create_a_client_secret_post_client_and_use_it__rfc6749_2_3_1(
    admin: AdminBrowser,
) -> None:
    response = admin.submit(
        "/admin/clients/new", {**SERVICE, "token_endpoint_auth_method": "client_secret_post"}
    )
    client_id, secret = created_credentials(response)
    assert secret is not None
    row = db.session.get(Client, client_id)
    assert row.token_endpoint_auth_method == "client_secret_post"
    assert audit_of("admin.client_create")[0].details["token_endpoint_auth_method"] == (
        "client_secret_post"
    )
    ok = admin.browser.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert ok.status_code == 200, ok.get_json()
    page = text_of(admin.get(f"/admin/clients/{client_id}"))
    assert "client_secret_post" in page


def test_create_a_private_key_jwt_client_with_its_keys(admin: AdminBrowser) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    response = admin.submit("/admin/clients/new", {
        **SERVICE, "token_endpoint_auth_method": "private_key_jwt",
        "jwks": json.dumps(KeySet([key]).as_dict(private=False)),
    })
    client_id, secret = created_credentials(response)
    assert secret is None
    row = db.session.get(Client, client_id)
    assert row.token_endpoint_auth_method == "private_key_jwt" and row.jwks["keys"][0]["kid"]


def test_refusals_say_why(admin: AdminBrowser) -> None:
    no_keys = admin.submit(
        "/admin/clients/new", {**SERVICE, "token_endpoint_auth_method": "private_key_jwt"}
    )
    assert "JWKS" in text_of(no_keys)
    not_json = admin.submit("/admin/clients/new", {
        **SERVICE, "token_endpoint_auth_method": "private_key_jwt", "jwks": "{not json"})
    assert "not JSON" in text_of(not_json)
    hostile = admin.submit(
        "/admin/clients/new", {**SERVICE, "token_endpoint_auth_method": "client_secret_jwt"}
    )
    assert hostile.status_code == 200
    assert db.session.query(Client).count() == 0


def test_edit_switches_basic_to_post(admin: AdminBrowser, make_client: Any) -> None:
    client, secret = make_client(name="Old", grant_types=["client_credentials"], scope="openid")
    url = f"/admin/clients/{client.client_id}"
    page = admin.get(url).get_data(as_text=True)
    assert '<option selected value="client_secret_basic">' in page
    response = admin.submit(url, {**SERVICE, "token_endpoint_auth_method": "client_secret_post"})
    assert response.status_code == 302, text_of(response)[:500]
    db.session.expire_all()
    assert db.session.get(Client, client.client_id).token_endpoint_auth_method == (
        "client_secret_post"
    )
    changed = audit_of("admin.client_update")[0].details["changed"]
    assert changed["token_endpoint_auth_method"] == {
        "from": "client_secret_basic", "to": "client_secret_post"}
    basic = admin.browser.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret)
    )
    assert basic.get_json()["error"] == "invalid_client"
