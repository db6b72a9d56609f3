"""Personal data shown on purpose in the management API (issue 27 item 3, PIPL): phones and
emails are masked in every answer that carries them unless the service holds
`idp:accounts.personal_data`; a search by a full phone still finds the account; a read that
showed them in full says so in the account's audit trail."""

from __future__ import annotations

from typing import Any

from idp.extensions import db
from idp.identity.models import AuditEvent
from tests.api.conftest import ALL_SCOPES, MASKED_SCOPES, Service

PHONE, EMAIL = "+8613812346183", "alice@example.com"
MASKED_PHONE, MASKED_EMAIL = "138****6183", "a***@example.com"


def identity_values(account: dict[str, Any]) -> dict[str, Any]:
    return {identity["kind"]: identity["value"] for identity in account["identities"]
            if identity["kind"] in ("phone", "email")}


def personal_values(account: dict[str, Any]) -> set[Any]:
    """Every phone or email the answer shows: identities, claims and the served profile."""
    claims = {claim["value"] for claim in account["claims"]
              if claim["name"] in ("phone_number", "email")}
    profile = {account["profile"][name] for name in ("phone_number", "email")
               if name in account["profile"]}
    return set(identity_values(account).values()) | claims | profile


def reads_of(account_id: str) -> list[AuditEvent]:
    return list(db.session.query(AuditEvent).filter_by(action="account.read",
                                                       account_id=account_id)
                .order_by(AuditEvent.id))


def test_phones_and_emails_are_masked_without_the_scope__issue27_3(
    service: Service, make_user: Any
) -> None:
    alice = make_user(PHONE, email=EMAIL, name="Alice")
    service.token = service.get_token(MASKED_SCOPES)
    response = service.call("GET", f"/accounts/{alice.id}")
    assert response.status_code == 200
    account = response.get_json()
    assert identity_values(account) == {"phone": MASKED_PHONE, "email": MASKED_EMAIL}
    assert personal_values(account) <= {MASKED_PHONE, MASKED_EMAIL}
    text = response.get_data(as_text=True)
    assert "13812346183" not in text and EMAIL not in text
    # A write answers with the account too: masked alike.
    linked = service.call("POST", f"/accounts/{alice.id}/identities",
                          json={"kind": "email", "value": "bob@example.org"})
    assert linked.status_code == 201
    assert "bob@example.org" not in linked.get_data(as_text=True)
    assert "b***@example.org" in {i["value"] for i in linked.get_json()["identities"]}


def test_the_personal_data_scope_shows_them_in_full__issue27_3(
    service: Service, make_user: Any
) -> None:
    alice = make_user(PHONE, email=EMAIL)
    service.token = service.get_token(ALL_SCOPES)
    account = service.call("GET", f"/accounts/{alice.id}").get_json()
    assert identity_values(account) == {"phone": PHONE, "email": EMAIL}
    assert MASKED_PHONE not in personal_values(account)


def test_a_search_by_full_phone_finds_the_account_and_answers_masked__issue27_3(
    service: Service, make_user: Any
) -> None:
    alice = make_user(PHONE, email=EMAIL)
    make_user("+8613900000001")
    service.token = service.get_token("idp:accounts.read")
    response = service.call("GET", "/accounts", query_string={"q": "+86 138 1234 6183"})
    assert response.status_code == 200
    found = response.get_json()["accounts"]
    assert [account["sub"] for account in found] == [alice.id]
    assert identity_values(found[0]) == {"phone": MASKED_PHONE, "email": MASKED_EMAIL}
    assert "13812346183" not in response.get_data(as_text=True)


def test_only_a_read_that_showed_personal_data_says_so_in_the_audit_trail__issue27_3(
    service: Service, make_user: Any
) -> None:
    alice = make_user(PHONE, email=EMAIL)
    service.token = service.get_token(MASKED_SCOPES)
    service.call("GET", f"/accounts/{alice.id}")
    service.call("GET", "/accounts", query_string={"q": PHONE})
    service.token = service.get_token(ALL_SCOPES)
    service.call("GET", f"/accounts/{alice.id}")
    service.call("GET", "/accounts", query_string={"q": PHONE})
    service.call("GET", f"/accounts/{alice.id}/sessions")  # no phone or email in it
    assert [(row.details["what"], row.details.get("personal_data")) for row in reads_of(alice.id)
            ] == [("account", None), ("search", None), ("account", True), ("search", True),
                  ("sessions", None)]


def test_the_masked_answer_has_its_own_etag_and_if_match_takes_it__rfc9110_8_8_1(
    service: Service, make_user: Any
) -> None:
    """A strong validator is unique across a resource's representations: the masked and the
    full answers differ, so do their tags; each caller's tag is the one its If-Match matches."""
    alice = make_user(PHONE, email=EMAIL)
    full_tag = service.call("GET", f"/accounts/{alice.id}").headers["ETag"]
    service.token = service.get_token(MASKED_SCOPES)
    masked_tag = service.call("GET", f"/accounts/{alice.id}").headers["ETag"]
    assert masked_tag != full_tag
    refused = service.call("PATCH", f"/accounts/{alice.id}/claims", json={"nickname": "Al"},
                           headers={"If-Match": full_tag})
    assert refused.status_code == 412
    updated = service.call("PATCH", f"/accounts/{alice.id}/claims", json={"nickname": "Al"},
                           headers={"If-Match": masked_tag})
    assert updated.status_code == 200, updated.get_data(as_text=True)
    assert identity_values(updated.get_json())["phone"] == MASKED_PHONE
