"""The management API writes every claim of the data dictionary whose writers include `api`
(issue 16): checked by the catalogue, stored with the source `api`, read back typed; a refused
claim is an RFC 9457 problem naming the claim and the reason; ETag/If-Match unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from idp.extensions import db
from idp.identity.models import ProfileClaim
from tests.api.conftest import Service
from tests.api.test_accounts_api import problem_of

MEMBER_LEVEL = {"name": "member_level", "type": "integer", "scope": "member",
                "writers": ["admin", "api"], "description": "Loyalty level, 0-5."}
VIP = {"name": "vip", "type": "boolean", "scope": "member", "writers": ["api"]}
STORE_ID = {"name": "store_id", "type": "string", "scope": "profile", "writers": ["admin"]}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["IDP_CUSTOM_CLAIMS"] = json.dumps([MEMBER_LEVEL, VIP, STORE_ID])
    return app_config


def patch(service: Service, sub: str, claims: dict[str, Any]) -> Any:
    etag = service.call("GET", f"/accounts/{sub}").headers["ETag"]
    return service.call("PATCH", f"/accounts/{sub}/claims", json=claims,
                        headers={"If-Match": etag})


def stored_sources(sub: str, name: str) -> dict[str, str]:
    rows = db.session.query(ProfileClaim).filter_by(account_id=sub, name=name).all()
    return {row.source: row.value for row in rows}


def test_a_custom_claim_is_written_with_source_api_and_read_back_typed(
    service: Service, make_user: Any
) -> None:
    sub = make_user().id
    response = patch(service, sub, {
        "member_level": 3, "vip": True, "gender": "female", "birthdate": "1990-05-01",
        "address": {"locality": "Shanghai", "country": "CN"}, "nickname": "ali",
    })
    assert response.status_code == 200, response.get_json()
    account = response.get_json()
    assert account["profile"]["member_level"] == 3 and account["profile"]["vip"] is True
    assert account["profile"]["address"] == {"locality": "Shanghai", "country": "CN"}
    assert account["profile"]["birthdate"] == "1990-05-01"
    sources = {claim["name"]: claim["source"] for claim in account["claims"]}
    assert set(sources.values()) == {"api"}
    assert stored_sources(sub, "member_level") == {"api": "3"}

    again = service.call("GET", f"/accounts/{sub}")
    assert again.get_json() == account and again.headers["ETag"] == response.headers["ETag"]

    cleared = service.call("PATCH", f"/accounts/{sub}/claims", json={"member_level": None},
                           headers={"If-Match": response.headers["ETag"]})
    assert cleared.status_code == 200
    assert "member_level" not in cleared.get_json()["profile"]
    assert stored_sources(sub, "member_level") == {}


def test_create_accepts_custom_claims(service: Service) -> None:
    created = service.call("POST", "/accounts", json={
        "phone": "+8613800138001", "claims": {"member_level": "2", "name": "Bo"}})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["profile"] == {"member_level": 2, "name": "Bo"}


@pytest.mark.parametrize("claims, status, claim, reason", [
    ({"store_id": "SH-001"}, 403, "store_id", "api may not write it"),
    ({"member_level": "three"}, 400, "member_level", "must be an integer"),
    ({"member_level": 1.5}, 400, "member_level", "must be an integer"),
    ({"member_level": 2**60}, 400, "member_level", "is out of range"),
    ({"vip": "maybe"}, 400, "vip", "must be true or false"),
    ({"birthdate": "1990-02-30"}, 400, "birthdate", "must be YYYY-MM-DD, 0000-MM-DD or YYYY"),
    ({"address": {"planet": "Mars"}}, 400, "address", "must be an object of"),
    ({"address": ["Shanghai"]}, 400, "address", "must be an object of"),
    ({"picture": "javascript:alert(1)"}, 400, "picture", "must be an http(s) URL"),
    ({"name": "x" * 256}, 400, "name", "must be text of at most 255 characters"),
    ({"name": {"first": "A"}}, 400, "name", "must be text of at most 255 characters"),
    ({"member_level": ""}, 400, "member_level", "empty"),
    ({"memberlevel": 1}, 400, "memberlevel", "unknown claim"),
    ({"email": "a@example.com"}, 400, "email", "unknown claim"),
])
def test_a_refused_claim_is_a_problem_naming_claim_and_reason__rfc9457_3_2(
    service: Service, make_user: Any, claims: dict[str, Any], status: int, claim: str,
    reason: str,
) -> None:
    sub = make_user().id
    before = service.call("GET", f"/accounts/{sub}")
    response = patch(service, sub, {"nickname": "kept out", **claims})
    assert response.status_code == status
    problem = problem_of(response)
    assert problem["claim"] == claim and problem["reason"].startswith(reason)
    assert claim in problem["detail"]
    after = service.call("GET", f"/accounts/{sub}")
    assert after.headers["ETag"] == before.headers["ETag"]  # nothing written, not even nickname


def test_the_document_describes_every_claim_the_api_writes(client: Any) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    validate(document)
    update = document["components"]["schemas"]["ClaimsUpdate"]
    assert update["additionalProperties"] is False
    assert {"member_level", "vip", "name", "gender", "birthdate", "address"} <= set(
        update["properties"])
    assert "store_id" not in update["properties"]  # admin only
    member = update["properties"]["member_level"]["oneOf"]
    assert member[0]["type"] == "integer" and member[1] == {"type": "null"}
    assert "member" in member[0]["description"]


def test_a_claim_declared_in_the_admin_ui_is_documented_and_writable_at_once(
    app: Any, service: Service, make_user: Any
) -> None:
    from idp.identity.catalogue import declare_claim

    declare_claim({"name": "store_code", "type": "string", "scope": "stores",
                   "writers": ["api"]})
    db.session.commit()
    document = service.browser.get("/api/v1/openapi.json").get_json()
    assert "store_code" in document["components"]["schemas"]["ClaimsUpdate"]["properties"]
    sub = make_user().id
    response = patch(service, sub, {"store_code": "SH-9"})
    assert response.status_code == 200 and response.get_json()["profile"]["store_code"] == "SH-9"


DATED = {"name": "joined_on", "type": "date", "scope": "member", "writers": ["api"]}
HOMEPAGE = {"name": "shop_url", "type": "url", "scope": "member", "writers": ["api"]}


def test_claim_writes_keep_to_the_document__schemathesis(
    app: Any, service: Service, make_user: Any
) -> None:
    """Generated bodies (schema-valid and not) for every declared type, on the claim-writing
    operations: never a 5xx, every answer as documented."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    from tests.api.test_openapi import CHECKS

    app.config["IDP_CUSTOM_CLAIMS"] = json.dumps([MEMBER_LEVEL, VIP, STORE_ID, DATED, HOMEPAGE])
    sub = make_user().id
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {service.token}", "If-Match": "*"}
    operations = [result.ok() for result in api.get_all_operations()
                  if result.ok().path in ("/accounts/{sub}/claims", "/accounts")
                  and result.ok().method.upper() in ("PATCH", "POST")]
    assert len(operations) == 2
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_to_the_document(case: Any) -> None:
            if case.path_parameters:
                case.path_parameters["sub"] = sub
            case.call_and_validate(headers=headers, checks=CHECKS)

        keeps_to_the_document()
