"""Adding or changing the account's phone by SMS code (purposes bind_phone and change_phone):
the proven phone goes through the identity engine, which merges when another account holds it
verified (issue 11)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.models import IdentityKind
from idp.identity.service import identities_of
from tests.conftest import csrf_token, login


def change_phone(app: Flask, client: FlaskClient, typed: str, e164: str) -> Any:
    page = client.get("/account")
    sent = client.post("/account/phone", data={
        "phone": typed, "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert sent.status_code == 302 and "/account/phone/confirm" in sent.headers["Location"]
    [message] = [m for m in app.extensions["idp_sms"].outbox if m.phone == e164]
    confirm = client.get(sent.headers["Location"])
    done = client.post("/account/phone/confirm", data={
        "phone": e164, "code": message.code,
        "csrf_token": csrf_token(confirm.get_data(as_text=True))})
    return message, done


def test_changing_the_phone_proves_the_new_one_and_drops_the_old(
    app: Flask, client: FlaskClient, user: Any
) -> None:
    login(client, "+8613800138000")
    message, done = change_phone(app, client, "137 0013 7000", "+8613700137000")
    assert message.purpose == "change_phone"
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    db.session.expire_all()
    phones = [(i.value, i.verified, i.verified_by) for i in identities_of(user, IdentityKind.PHONE)]
    assert phones == [("+8613700137000", True, "sms")]


def test_an_account_without_a_phone_binds_one(app: Flask, client: FlaskClient) -> None:
    from idp.accounts.passwords import hash_password
    from idp.accounts.registration import add_password
    from idp.identity.audit import Actor
    from idp.identity.service import create_account, link_identity

    actor = Actor.system("test")
    account = create_account(actor, "website")
    link_identity(account, IdentityKind.EMAIL, "nophone@example.com", actor, verified=True,
                  proof="email")
    add_password(account, hash_password("correct horse battery"), actor)
    db.session.commit()
    login(client, "nophone@example.com")
    message, done = change_phone(app, client, "13600136000", "+8613600136000")
    assert message.purpose == "bind_phone" and done.status_code == 302
    db.session.expire_all()
    assert [i.value for i in identities_of(account, IdentityKind.PHONE)] == ["+8613600136000"]


def test_a_phone_held_by_another_account_merges_them(
    app: Flask, client: FlaskClient, user: Any, make_user: Any
) -> None:
    other = make_user(phone="+8613700137000")
    login(client, "+8613800138000")
    _message, done = change_phone(app, client, "13700137000", "+8613700137000")
    assert done.status_code == 302
    from idp.identity.service import resolve_account

    assert resolve_account(other.id).id == resolve_account(user.id).id


def test_a_wrong_code_binds_nothing(app: Flask, client: FlaskClient, user: Any) -> None:
    login(client, "+8613800138000")
    page = client.get("/account")
    client.post("/account/phone", data={
        "phone": "13700137000", "csrf_token": csrf_token(page.get_data(as_text=True))})
    confirm = client.get("/account/phone/confirm?phone=%2B8613700137000")
    wrong = client.post("/account/phone/confirm", data={
        "phone": "+8613700137000", "code": "000000" if app.extensions["idp_sms"].last_code(
            "+8613700137000") != "000000" else "111111",
        "csrf_token": csrf_token(confirm.get_data(as_text=True))})
    assert wrong.status_code == 200
    db.session.expire_all()
    assert [i.value for i in identities_of(user, IdentityKind.PHONE)] == ["+8613800138000"]
