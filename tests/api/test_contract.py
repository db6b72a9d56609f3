"""The API's answers keep to its contract (issue 23 items 14 and 6): every status it answers is in
the schema, If-Match compares strongly, what it refuses the schema refuses too, a service's reads
are in the account's audit trail, and no answer is cached."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.deletion import erase_account
from idp.identity.models import AuditEvent
from tests.api.conftest import Service
from tests.api.test_accounts_api import problem_of


def validator(client: Any, schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of `schema` whose `#/components/...` references resolve in the document."""
    components = client.get("/api/v1/openapi.json").get_json()["components"]
    return Draft202012Validator({**schema, "components": components})


def body_schema(client: Any, path: str, method: str) -> dict[str, Any]:
    document = client.get("/api/v1/openapi.json").get_json()
    return document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]


def test_an_erased_account_reads_as_deleted_which_the_schema_allows__issue23_14(
    service: Service, make_user: Any, client: Any
) -> None:
    account = make_user()
    erase_account(account, Actor.system("test"))
    db.session.commit()
    response = service.call("GET", f"/accounts/{account.id}")
    assert response.status_code == 200
    assert response.get_json()["status"] == "deleted"
    validator(client, {"$ref": "#/components/schemas/Account"}).validate(response.get_json())


def test_a_weak_etag_never_matches__rfc9110_13_1_1(service: Service, make_user: Any) -> None:
    sub = make_user().id
    etag = service.call("GET", f"/accounts/{sub}").headers["ETag"]
    for refused in (f"W/{etag}", f"W/{etag}, W/\"other\""):
        response = service.call("PATCH", f"/accounts/{sub}/claims", json={"nickname": "w"},
                                headers={"If-Match": refused})
        assert response.status_code == 412, refused
        assert problem_of(response)["type"] == "urn:idp:problem:etag_mismatch"
    strong = service.call("PATCH", f"/accounts/{sub}/claims", json={"nickname": "s"},
                          headers={"If-Match": f'W/"x", {etag}'})
    assert strong.status_code == 200
    anything = service.call("PATCH", f"/accounts/{sub}/claims", json={"nickname": "a"},
                            headers={"If-Match": "*"})
    assert anything.status_code == 200


REFUSED_BODIES = [
    ("/accounts", "post", {"phone": ""}),
    ("/accounts", "post", {"phone": " "}),
    ("/accounts", "post", {"phone": "phone"}),
    ("/accounts", "post", {"phone": "+8613800138000", "phone_verified": "yes"}),
    ("/accounts", "post", {"phone": "+8613800138000", "claims": {"gender": "   "}}),
    ("/accounts", "post", {"phone": "+8613800138000", "claims": {"picture": "ftp://x/y.png"}}),
    ("/accounts", "post", {"phone": "+8613800138000", "claims": {"birthdate": "2020-1-1"}}),
    ("/accounts", "post", {"phone": "+8613800138000", "claims": {"birthdate": "2020-13-01"}}),
    ("/accounts/{sub}/identities", "post", {"kind": "email", "value": ""}),
    ("/accounts/{sub}/identities", "post", {"kind": "email", "value": "a b@example.com"}),
    ("/accounts/{sub}/identities", "post", {"kind": "email", "value": "a@b",
                                            "verified": True}),
    ("/accounts/{sub}/identities", "post", {"kind": "phone", "value": ""}),
    ("/accounts/{sub}/identities", "post", {"kind": "wechat_openid", "value": "o1"}),
    ("/merges", "post", {"survivor": "a", "merged": "b", "reason": ""}),
]


@pytest.mark.parametrize(("path", "method", "body"), REFUSED_BODIES)
def test_what_the_api_refuses_the_schema_refuses__issue23_14(
    service: Service, make_user: Any, client: Any, path: str, method: str, body: dict[str, Any]
) -> None:
    response = service.call(method.upper(), path.replace("{sub}", make_user().id), json=body)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert not validator(client, body_schema(client, path, method)).is_valid(body)


def test_what_the_schema_allows_the_api_takes(
    service: Service, make_user: Any, client: Any
) -> None:
    sub = make_user().id
    accepted = [
        ("/accounts", "post", {"phone": "+86 139-1234-5678", "phone_verified": False,
                               "claims": {"gender": "female", "birthdate": "0000-02-29",
                                          "picture": "https://img.example/a.png"}}),
        ("/accounts/{sub}/identities", "post", {"kind": "email", "value": "Ann@Example.com"}),
        ("/accounts/{sub}/identities", "post", {"kind": "phone", "value": "(0)13912345670"}),
    ]
    for path, method, body in accepted:
        assert validator(client, body_schema(client, path, method)).is_valid(body), body
        response = service.call(method.upper(), path.replace("{sub}", sub), json=body)
        assert response.status_code == 201, (body, response.get_data(as_text=True)[:300])


def test_a_services_reads_are_in_the_accounts_audit_trail__issue23_14(
    service: Service, make_user: Any
) -> None:
    alice, bob = make_user(name="Alice"), make_user(name="Bob")
    service.call("GET", f"/accounts/{alice.id}")
    service.call("GET", "/accounts", query_string={"q": "bob"})
    service.call("GET", f"/accounts/{alice.id}/sessions")
    service.call("GET", f"/accounts/{alice.id}/refresh-families")
    service.call("GET", f"/accounts/{bob.id}/merges")
    service.call("GET", "/merges", query_string={"sub": bob.id})
    reads = db.session.query(AuditEvent).filter_by(action="account.read").order_by(
        AuditEvent.id).all()
    assert [(row.account_id, row.details["what"]) for row in reads] == [
        (alice.id, "account"), (bob.id, "search"), (alice.id, "sessions"),
        (alice.id, "refresh_families"), (bob.id, "merges"), (bob.id, "merges")]
    assert {(row.actor_type, row.actor_id) for row in reads} == {("client", service.client_id)}
    assert all(row.created_at is not None for row in reads)


@pytest.mark.parametrize("path", [
    "/accounts?q=alice", "/accounts", "/accounts/{sub}", "/accounts/{sub}/sessions",
    "/accounts/{sub}/refresh-families", "/accounts/{sub}/merges", "/merges", "/events/status",
])
def test_no_answer_is_cached__rfc9111_5_2_2_5(
    service: Service, make_user: Any, path: str
) -> None:
    """Issue 23 item 6: the search answered without Cache-Control while single reads had it."""
    response = service.call("GET", path.replace("{sub}", make_user(name="Alice").id))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
