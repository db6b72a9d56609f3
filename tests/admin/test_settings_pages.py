"""Clients, WeChat apps, signing keys and event deliveries."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from idp.events.models import DeliveryStatus, EventDelivery
from idp.extensions import db
from idp.oidc.models import Client, SigningKey
from idp.wechat.models import WeChatApp
from tests.admin.conftest import AdminBrowser, audit_of, text_of

NEW_CLIENT = {
    "name": "Shop",
    "redirect_uris": "https://shop.example/callback\nhttps://shop.example/cb2",
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile phone",
    "events_uri": "https://shop.example/events",
    "event_types": ["account-merged", "account-disabled"],
    "post_logout_redirect_uris": "https://shop.example/bye",
}


def _create(admin: AdminBrowser, **changes: Any) -> Any:
    return admin.submit("/admin/clients/new", {**NEW_CLIENT, **changes})


def test_create_a_client_shows_the_secret_once(admin: AdminBrowser) -> None:
    response = _create(admin)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    client_id = re.search(r'id="client-id">([^<]+)<', html).group(1)  # type: ignore[union-attr]
    secret = re.search(r'id="client-secret"[^>]*>([^<]+)<', html).group(1)  # type: ignore[union-attr]
    client = db.session.get(Client, client_id)
    assert client is not None and client.check_client_secret(secret)
    assert client.redirect_uris == NEW_CLIENT["redirect_uris"].split("\n")
    assert client.events_uri == "https://shop.example/events"
    assert client.event_types == ["account-merged", "account-disabled"]
    assert secret not in text_of(admin.get(f"/admin/clients/{client_id}"))
    assert secret not in text_of(admin.get("/admin/clients"))
    assert [e.details["client_id"] for e in audit_of("admin.client_create")] == [client_id]


def test_an_invalid_client_is_refused_with_the_reason(admin: AdminBrowser) -> None:
    response = _create(admin, redirect_uris="http://evil.example/cb")
    assert response.status_code == 200
    assert "loopback only" in text_of(response)
    assert db.session.scalars(sa.select(Client)).all() == []


def test_an_internal_events_uri_is_refused_in_the_admin_form__issue10_8(
    app: Any, admin: AdminBrowser
) -> None:
    app.config["IDP_OUTBOUND_ALLOWED_NETWORKS"] = ""
    response = _create(admin, events_uri="https://169.254.169.254/latest")
    assert response.status_code == 200 and "non-public address" in text_of(response)
    assert db.session.scalars(sa.select(Client)).all() == []


def test_edit_a_client(admin: AdminBrowser, make_client: Any) -> None:
    client, _secret = make_client(name="Old")
    url = f"/admin/clients/{client.client_id}"
    response = admin.submit(url, {
        "name": "New name", "redirect_uris": "https://rp.example/new",
        "grant_types": ["authorization_code"], "scope": "openid email", "first_party": "y",
        "wechat_appid": "", "events_uri": "", "post_logout_redirect_uris": "",
        "backchannel_logout_uri": "https://rp.example/bc",
    })
    assert response.status_code == 302
    db.session.expire_all()
    edited = db.session.get(Client, client.client_id)
    assert (edited.name, edited.redirect_uris, edited.scope, edited.is_first_party) == (
        "New name", ["https://rp.example/new"], "openid email", True)
    assert edited.backchannel_logout_uri == "https://rp.example/bc"
    changed = audit_of("admin.client_update")[0].details["changed"]
    assert set(changed) >= {"name", "redirect_uris", "scope", "first_party"}
    refused = admin.submit(url, {"name": "x", "redirect_uris": "", "scope": "openid",
                                 "grant_types": ["authorization_code"]})
    assert "needs at least one redirect URI" in text_of(refused)


def test_rotate_a_client_secret(admin: AdminBrowser, make_client: Any) -> None:
    client, old = make_client()
    url = f"/admin/clients/{client.client_id}/rotate-secret"
    assert "stops working immediately" in text_of(admin.get(url))
    response = admin.submit(url)
    new = re.search(r'id="client-secret"[^>]*>([^<]+)<', response.get_data(as_text=True))
    assert new
    db.session.expire_all()
    rotated = db.session.get(Client, client.client_id)
    assert rotated.check_client_secret(new.group(1)) and not rotated.check_client_secret(old)
    assert len(audit_of("admin.client_secret_rotate")) == 1


def test_wechat_app_secret_goes_in_and_never_comes_out(admin: AdminBrowser) -> None:
    secret = "0123456789abcdef0123456789abWXYZ"
    response = admin.submit("/admin/wechat-apps", {
        "kind": "miniprogram", "appid": "wx1234567890abcdef", "name": "Shop mini",
        "secret": secret})
    assert response.status_code == 302
    html = text_of(admin.get("/admin/wechat-apps"))
    assert "wx1234567890abcdef" in html and "…WXYZ" in html and secret[:-4] not in html
    row = db.session.get(WeChatApp, "wx1234567890abcdef")
    assert row is not None and secret not in row.secret_encrypted
    duplicate = admin.submit("/admin/wechat-apps", {
        "kind": "miniprogram", "appid": "wx1234567890abcdef", "secret": "another-secret"})
    assert "exists already" in text_of(duplicate) and "another-secret" not in text_of(duplicate)
    assert [e.details["appid"] for e in audit_of("admin.wechat_app_create")] == [
        "wx1234567890abcdef"]


def test_keys_rotate_and_retire(admin: AdminBrowser, app: Any) -> None:
    app.extensions["idp_keyring"].current("RS256")  # creates the first keys
    first = {row.kid for row in db.session.scalars(sa.select(SigningKey))}
    assert "retire" not in text_of(admin.get("/admin/keys")).lower().split("rotate")[-1]
    admin.submit("/admin/keys/rotate")
    db.session.expire_all()
    rows = db.session.scalars(sa.select(SigningKey)).all()
    assert len(rows) == 4
    old = sorted(first)[0]
    assert f"/admin/keys/{old}/retire" in admin.get("/admin/keys").get_data(as_text=True)
    admin.submit(f"/admin/keys/{old}/retire")
    db.session.expire_all()
    assert db.session.get(SigningKey, old).retired_at is not None
    assert old not in str(app.test_client().get("/oauth/jwks").get_json())
    current = next(r.kid for r in rows if r.kid not in first)
    response = admin.submit(f"/admin/keys/{current}/retire")
    assert "rotate first" in text_of(admin.get(response.headers["Location"]))
    assert len(audit_of("admin.keys_rotate")) == 1 and len(audit_of("admin.key_retire")) == 1


def test_failed_event_deliveries_can_be_retried(admin: AdminBrowser) -> None:
    dead = EventDelivery(client_id="c1", event_type="account-merged", payload="{}",
                         status=DeliveryStatus.DEAD, attempts=8, last_error="HTTP 500")
    done = EventDelivery(client_id="c1", event_type="account-merged", payload="{}",
                         status=DeliveryStatus.DELIVERED, attempts=1)
    db.session.add_all([dead, done])
    db.session.commit()
    html = text_of(admin.get("/admin/events"))
    assert "HTTP 500" in html and f"/admin/events/{done.id}/retry" not in html
    admin.submit("/admin/events", action=f"/admin/events/{dead.id}/retry")
    db.session.expire_all()
    retried = db.session.get(EventDelivery, dead.id)
    assert (retried.status, retried.attempts) == (DeliveryStatus.PENDING, 0)
    assert audit_of("event.retry")[0].actor_id == admin.account.id
    refused = admin.submit("/admin/events", action=f"/admin/events/{done.id}/retry")
    assert "cannot be retried" in text_of(admin.get(refused.headers["Location"]))


def test_admin_adds_an_official_account_app(admin: AdminBrowser) -> None:
    response = admin.submit("/admin/wechat-apps", {
        "kind": "officialaccount", "appid": "wxoa34567890abcdef", "name": "公众号",
        "secret": "0123456789abcdef0123456789abOAOA"})
    assert response.status_code == 302
    assert db.session.get(WeChatApp, "wxoa34567890abcdef").kind == "officialaccount"
    assert "Official Account (sign-in inside WeChat)" in text_of(admin.get("/admin/wechat-apps"))


def test_a_field_error_is_tied_to_its_field__wcag_3_3_1(admin: AdminBrowser) -> None:
    html = _create(admin, name="").get_data(as_text=True)
    field = re.search(r'<input[^>]*name="name"[^>]*>', html).group(0)  # type: ignore[union-attr]
    assert 'aria-invalid="true"' in field and 'aria-describedby="name-error"' in field
    assert re.search(r'<p class="field-error" id="name-error">[^<]+</p>', html)
    scope = re.search(r'<input[^>]*name="scope"[^>]*>', html).group(0)  # type: ignore[union-attr]
    assert "aria-invalid" not in scope


def test_the_delivery_page_shows_both_sinks_with_lag_and_dead_letters(
    app: Any, admin: AdminBrowser
) -> None:
    from datetime import timedelta

    from idp.models_base import utcnow

    app.config["IDP_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:5672/"
    old = utcnow() - timedelta(seconds=120)
    db.session.add_all([
        EventDelivery(sink="amqp", event_type="account-created", payload="{}", created_at=old,
                      status=DeliveryStatus.PENDING, attempts=2, last_error="broker away"),
        EventDelivery(sink="amqp", event_type="account-created", payload="{}",
                      status=DeliveryStatus.DEAD, attempts=8, last_error="nack"),
        EventDelivery(client_id="c1", event_type="account-merged", payload="{}",
                      status=DeliveryStatus.PENDING, attempts=0),
    ])
    db.session.commit()

    html = admin.get("/admin/events").get_data(as_text=True)

    rows = re.findall(r'<tr data-sink="(\w+)">(.*?)</tr>', html, re.S)
    cells = {sink: re.findall(r"<td>(.*?)</td>", body, re.S)[1:] for sink, body in rows}
    # waiting, failing, dead, held behind a dead one (issue 23 item 12), lag
    assert cells["push"][:4] == ["1", "0", "0", "0"]
    assert int(cells["push"][4].split()[0]) < 60  # made just now; a slow machine takes seconds
    assert cells["amqp"][:4] == ["0", "1", "1", "0"]
    assert int(cells["amqp"][4].split()[0]) >= 120
    assert "idp.events" in html and "broker away" in html and "nack" in html
