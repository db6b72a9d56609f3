"""A management API client cannot give itself an account (issue 23 item 3). A phone it links or
creates with is unverified, so an SMS sign-in with that number never lands in the account,
unless the operator granted `idp:phones.vouch`; no scope reaches an administrator's ways in; and
a client of the login flow is never registered with an `idp:` scope."""

from __future__ import annotations

from typing import Any

import pytest

from idp.accounts.registration import sign_in_with_proven_phone
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.merge import merge_accounts
from idp.identity.models import Identity, IdentityKind
from idp.identity.rules import MergeRule, Proof
from idp.oidc.clients import ClientSpecError
from idp.oidc.models import Client
from tests.api.conftest import ALL_SCOPES, VOUCH, Service
from tests.api.test_accounts_api import problem_of

ATTACKER_PHONE = "+8613912345678"


def phones_of(account_id: str) -> list[tuple[str, bool, str | None]]:
    db.session.expire_all()
    rows = db.session.query(Identity).filter_by(account_id=account_id, kind=IdentityKind.PHONE)
    return sorted((row.value, row.verified, row.verified_by) for row in rows)


def test_a_phone_linked_through_the_api_signs_nobody_in__issue23_3(
    service: Service, make_user: Any
) -> None:
    """The attack: link my phone to someone's account, then sign in by SMS with it."""
    victim = make_user(phone="+8613800138000")
    linked = service.call("POST", f"/accounts/{victim.id}/identities",
                          json={"kind": "phone", "value": ATTACKER_PHONE})
    assert linked.status_code == 201, linked.get_json()
    assert (ATTACKER_PHONE, False, None) in phones_of(victim.id)

    # What the SMS sign-in does once the attacker typed the code sent to their own phone.
    account, created = sign_in_with_proven_phone(ATTACKER_PHONE)
    assert created and account.id != victim.id


def test_vouching_for_a_phone_needs_idp_phones_vouch__issue23_3(
    service: Service, make_user: Any
) -> None:
    sub = make_user().id
    refused = service.call("POST", f"/accounts/{sub}/identities",
                           json={"kind": "phone", "value": ATTACKER_PHONE, "verified": True})
    assert refused.status_code == 403, refused.get_json()
    assert 'scope="idp:phones.vouch"' in refused.headers["WWW-Authenticate"]
    assert problem_of(refused)["type"] == "urn:idp:problem:insufficient_scope"
    created = service.call("POST", "/accounts",
                           json={"phone": ATTACKER_PHONE, "phone_verified": True})
    assert created.status_code == 403 and problem_of(created)
    assert ATTACKER_PHONE not in [value for value, _, _ in phones_of(sub)]

    service.token = service.get_token(f"{ALL_SCOPES} {VOUCH}")
    vouched = service.call("POST", f"/accounts/{sub}/identities",
                           json={"kind": "phone", "value": ATTACKER_PHONE, "verified": True})
    assert vouched.status_code == 201, vouched.get_json()
    assert (ATTACKER_PHONE, True, "operator") in phones_of(sub)
    email = service.call("POST", f"/accounts/{sub}/identities",
                         json={"kind": "email", "value": "a@example.com", "verified": True})
    assert email.status_code == 400 and problem_of(email)


def test_an_account_created_through_the_api_holds_its_phone_unverified__issue23_3(
    service: Service,
) -> None:
    created = service.call("POST", "/accounts", json={"phone": ATTACKER_PHONE})
    assert created.status_code == 201
    (phone,) = created.get_json()["identities"]
    assert (phone["verified"], phone["verified_by"]) == (False, None)
    # An unverified copy still counts: the service finds that account rather than a twin.
    again = service.call("POST", "/accounts", json={"phone": ATTACKER_PHONE})
    assert again.status_code == 409 and problem_of(again)["type"].endswith("phone_taken")

    service.token = service.get_token(f"{ALL_SCOPES} {VOUCH}")
    vouched = service.call("POST", "/accounts",
                           json={"phone": "+8613912345679", "phone_verified": True})
    assert vouched.status_code == 201
    assert vouched.get_json()["identities"][0]["verified_by"] == "operator"


def test_no_scope_touches_an_administrators_ways_in__issue23_3(
    service: Service, make_user: Any
) -> None:
    admin = make_user(phone="+8613900000001", admin=True)
    customer = make_user()
    service.token = service.get_token(f"{ALL_SCOPES} {VOUCH}")  # every scope there is
    before = phones_of(admin.id)

    attempts = [
        ("POST", f"/accounts/{admin.id}/identities",
         {"kind": "phone", "value": ATTACKER_PHONE, "verified": True}),
        ("POST", f"/accounts/{admin.id}/identities", {"kind": "phone", "value": ATTACKER_PHONE}),
        ("POST", f"/accounts/{admin.id}/identities", {"kind": "email", "value": "a@example.com"}),
        ("DELETE", f"/accounts/{admin.id}/identities/{admin_phone_id(admin.id)}", None),
    ]
    for survivor, merged in ((admin.id, customer.id), (customer.id, admin.id)):
        pair = {"survivor": survivor, "merged": merged, "reason": "same person"}
        attempts += [("POST", "/merges/preview", pair), ("POST", "/merges", pair)]
    for method, path, body in attempts:
        response = service.call(method, path, **({"json": body} if body else {}))
        assert response.status_code == 403, (method, path, response.get_json())
        assert problem_of(response)["type"] == "urn:idp:problem:administrator_account"
    assert phones_of(admin.id) == before
    assert db.session.get(Client, service.client_id) is not None

    # A merge an administrator made in the admin UI is not undone through the API either.
    other = make_user()
    record = merge_accounts(admin, other, rule=MergeRule.ADMIN_DECISION,
                            proof=Proof.admin("my second account"), actor=Actor.admin(admin.id))
    undo = service.call("POST", f"/merges/{record.id}/undo")
    assert undo.status_code == 403 and problem_of(undo)["status"] == 403


def admin_phone_id(account_id: str) -> int:
    return db.session.query(Identity.id).filter_by(
        account_id=account_id, kind=IdentityKind.PHONE).scalar()


# --- registration: management scopes only for client_credentials --------------------------------


@pytest.mark.parametrize("grant_types", [
    ["authorization_code"], ["authorization_code", "refresh_token"],
    ["client_credentials", "authorization_code"], ["client_credentials", "refresh_token"],
])
def test_a_login_flow_client_cannot_be_registered_with_idp_scopes__issue23_3(
    make_client: Any, grant_types: list[str]
) -> None:
    with pytest.raises(ClientSpecError, match="only for a client whose sole grant type"):
        make_client(grant_types=grant_types, redirect_uris=["https://rp.example/cb"],
                    scope="openid idp:accounts.write")
    assert db.session.query(Client).count() == 0
    service, _ = make_client(grant_types=["client_credentials"], scope="idp:accounts.read")
    assert service.scope == "idp:accounts.read"


def test_the_cli_refuses_idp_scopes_for_a_login_flow_client__issue23_3(app: Any) -> None:
    runner = app.test_cli_runner()
    refused = runner.invoke(args=[
        "clients", "create", "--name", "Shop", "--redirect-uri", "https://shop.example/cb",
        "--scope", "openid idp:accounts.write", "--json"])
    assert refused.exit_code != 0 and "idp:accounts.write" in refused.output
    assert db.session.query(Client).count() == 0
