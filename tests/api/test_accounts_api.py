"""The management API (issue 15, CONTRACT §8): client-credentials bearer tokens with scopes an
admin granted; accounts through the identity engine; RFC 9457 problems; ETag/If-Match."""

from __future__ import annotations

from typing import Any

import pytest

from idp.extensions import db
from idp.identity.models import AccountStatus, AuditEvent
from tests.api.conftest import ALL_SCOPES, VOUCH, Service
from tests.signed_in_device import SignedInDevice


def problem_of(response: Any) -> dict[str, Any]:
    assert response.mimetype == "application/problem+json", response.get_data(as_text=True)
    body = response.get_json(force=True)
    assert body["status"] == response.status_code and body["type"].startswith("urn:idp:problem:")
    return body


def audit_actors(action: str) -> list[str]:
    rows = db.session.query(AuditEvent).filter_by(action=action).all()
    return [f"{row.actor_type}:{row.actor_id}" for row in rows]


# --- authentication: RFC 6750 --------------------------------------------------------------------


def test_no_token_is_401_with_a_bearer_challenge__rfc6750_3(client: Any) -> None:
    response = client.get("/api/v1/accounts")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert problem_of(response)["type"] == "urn:idp:problem:unauthenticated"


def test_a_users_access_token_is_refused__rfc6750_3_1(flow: Any, client: Any) -> None:
    """Only client-credentials tokens manage accounts: a user's token is invalid_token."""
    token = flow.tokens()["access_token"]
    response = client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_missing_scope_is_403_insufficient_scope__rfc6750_3_1(service: Service) -> None:
    service.token = service.get_token("idp:accounts.read")
    response = service.call("POST", "/accounts", json={"phone": "+8613800138000"})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert problem_of(response)["type"] == "urn:idp:problem:insufficient_scope"


def test_a_client_gets_only_the_scopes_an_admin_granted(
    client: Any, make_client: Any
) -> None:
    registered, secret = make_client(name="Points", grant_types=["client_credentials"],
                                     scope="idp:accounts.read")
    response = client.post("/oauth/token", auth=(registered.client_id, secret), data={
        "grant_type": "client_credentials", "scope": "idp:accounts.read idp:merges"})
    granted = response.get_json().get("scope", "")
    assert "idp:merges" not in granted.split()


# --- accounts ------------------------------------------------------------------------------------


def test_create_read_and_search_by_any_identifier(service: Service, make_user: Any) -> None:
    created = service.call("POST", "/accounts",
                           json={"phone": "138 0013 8000", "claims": {"name": "Alice"}})
    assert created.status_code == 201, created.get_json()
    account = created.get_json()
    assert account["status"] == "active" and account["created_via"] == "api"
    assert [(i["kind"], i["value"], i["verified"]) for i in account["identities"]] == [
        ("phone", "+8613800138000", False)]  # the IdP has not checked it (issue 23 item 3)
    assert created.headers["Location"].endswith(f"/api/v1/accounts/{account['sub']}")
    assert audit_actors("account.create") == [f"client:{service.client_id}"]

    read = service.call("GET", f"/accounts/{account['sub']}")
    assert read.get_json() == account and read.headers["ETag"] == created.headers["ETag"]
    for query in ("+86 138-0013-8000", account["sub"], "alic"):
        found = service.call("GET", "/accounts", query_string={"q": query}).get_json()
        assert [a["sub"] for a in found["accounts"]] == [account["sub"]], query

    again = service.call("POST", "/accounts", json={"phone": "+8613800138000"})
    assert again.status_code == 409 and problem_of(again)["type"].endswith("phone_taken")


def test_search_pages_with_a_cursor(service: Service, make_user: Any) -> None:
    subs = sorted(make_user().id for _ in range(5))
    seen, cursor = [], None
    while True:
        page = service.call("GET", "/accounts", query_string={
            "limit": 2, **({"cursor": cursor} if cursor else {})}).get_json()
        seen += [a["sub"] for a in page["accounts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == subs
    bad = service.call("GET", "/accounts", query_string={"cursor": "%%%"})
    assert bad.status_code == 400 and problem_of(bad)


def test_a_lost_update_is_refused_with_412__rfc9110_13_1_1(
    service: Service, make_user: Any
) -> None:
    sub = make_user().id
    etag = service.call("GET", f"/accounts/{sub}").headers["ETag"]

    first = service.call("PATCH", f"/accounts/{sub}/claims", json={"nickname": "ali"},
                         headers={"If-Match": etag})
    assert first.status_code == 200 and first.headers["ETag"] != etag
    stale = service.call("PATCH", f"/accounts/{sub}/claims", json={"nickname": "bob"},
                         headers={"If-Match": etag})
    assert stale.status_code == 412 and problem_of(stale)["type"].endswith("etag_mismatch")
    missing = service.call("PATCH", f"/accounts/{sub}/claims", json={"nickname": "bob"})
    assert missing.status_code == 428

    account = service.call("GET", f"/accounts/{sub}").get_json()
    claims = {claim["name"]: claim["value"] for claim in account["claims"]}
    assert claims["nickname"] == "ali"


def test_disable_and_enable_are_the_engines_and_audited_as_the_client(
    service: Service, make_user: Any
) -> None:
    sub = make_user().id
    assert service.call("POST", f"/accounts/{sub}/disable").get_json()["status"] == "disabled"
    again = service.call("POST", f"/accounts/{sub}/disable")
    assert again.status_code == 409 and problem_of(again)["type"].endswith("not_active")
    assert service.call("POST", f"/accounts/{sub}/enable").get_json()["status"] == (
        AccountStatus.ACTIVE)
    assert audit_actors("account.disable") == [f"client:{service.client_id}"]


def test_link_and_unlink_follow_the_engine_rules(service: Service, make_user: Any) -> None:
    sub = make_user().id
    other = make_user(phone="+8613800138099")
    linked = service.call("POST", f"/accounts/{sub}/identities",
                          json={"kind": "email", "value": "A@Example.com"})
    assert linked.status_code == 201
    email = next(i for i in linked.get_json()["identities"] if i["kind"] == "email")
    assert (email["value"], email["verified"]) == ("a@example.com", False)
    service.token = service.get_token(f"{ALL_SCOPES} {VOUCH}")
    taken = service.call("POST", f"/accounts/{sub}/identities",
                         json={"kind": "phone", "value": "+8613800138099", "verified": True})
    assert taken.status_code == 409 and other.id != sub

    phone = next(i for i in linked.get_json()["identities"] if i["kind"] == "phone")
    refused = service.call("DELETE", f"/accounts/{sub}/identities/{phone['id']}")
    assert refused.status_code == 422
    assert problem_of(refused)["type"] == "urn:idp:problem:last_way_to_log_in"
    assert service.call("DELETE", f"/accounts/{sub}/identities/{email['id']}").status_code == 200


def test_sessions_and_refresh_families_can_be_listed_and_ended(
    service: Service, flow: Any, user: Any
) -> None:
    flow.tokens(scope="openid offline_access")
    families = service.call("GET", f"/accounts/{user.id}/refresh-families").get_json()
    (family,) = families["families"]
    assert family["client_id"] == flow.client.client_id and family["revoked"] is False
    assert service.call("DELETE", f"/accounts/{user.id}/refresh-families/{family['family']}"
                        ).status_code == 204
    (after,) = service.call("GET", f"/accounts/{user.id}/refresh-families").get_json()["families"]
    assert after["revoked"] is True

    sessions = service.call("GET", f"/accounts/{user.id}/sessions").get_json()["sessions"]
    assert len(sessions) == 1
    assert service.call("DELETE", f"/accounts/{user.id}/sessions/{sessions[0]['handle']}"
                        ).status_code == 204
    assert service.call("GET", f"/accounts/{user.id}/sessions").get_json()["sessions"] == []
    assert service.call("DELETE", f"/accounts/{user.id}/sessions/{sessions[0]['handle']}"
                        ).status_code == 404


def test_the_api_ending_a_session_revokes_its_refresh_token__backchannel_logout_2_5(
    app: Any, service: Service, user: Any, make_client: Any, backchannel_receiver: Any
) -> None:
    """The API's DELETE once told the relying parties but left the session's refresh tokens
    alive."""
    device = SignedInDevice.start(app, "+8613800138000", make_client, backchannel_receiver)
    (listed,) = service.call("GET", f"/accounts/{user.id}/sessions").get_json()["sessions"]
    assert service.call("DELETE", f"/accounts/{user.id}/sessions/{listed['handle']}"
                        ).status_code == 204
    device.assert_signed_out(backchannel_receiver)


# --- merges --------------------------------------------------------------------------------------


def test_preview_merge_history_and_undo_through_the_engine(
    service: Service, make_user: Any
) -> None:
    from tests.identity.conftest import age

    survivor, merged = age(make_user(), 10), make_user()
    pair = {"survivor": survivor.id, "merged": merged.id, "reason": "same customer, ticket 42"}

    preview = service.call("POST", "/merges/preview", json=pair).get_json()
    assert preview["allowed"] is True and len(preview["moving_identities"]) == 2
    done = service.call("POST", "/merges", json=pair)
    assert done.status_code == 201
    record = done.get_json()
    assert record["actor"] == f"client:{service.client_id}"
    # The merged-away sub still resolves, to the survivor.
    assert service.call("GET", f"/accounts/{merged.id}").get_json()["sub"] == survivor.id

    refused = service.call("POST", "/merges", json=pair)
    assert refused.status_code in (404, 422)
    history = service.call("GET", "/merges", query_string={"sub": survivor.id}).get_json()
    assert [m["id"] for m in history["merges"]] == [record["id"]]
    undone = service.call("POST", f"/merges/{record['id']}/undo")
    assert undone.status_code == 200 and undone.get_json()["undone_at"]
    again = service.call("POST", f"/merges/{record['id']}/undo")
    assert again.status_code == 422 and problem_of(again)


# --- hostile input, limits ----------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    "not json", "[]", '{"phone": 5}', '{"phone": "+86 x"}', '{"phone": "+8613800138000\\u0000"}',
    '{"phone": "+8613800138000", "claims": {"password": "x"}}',
    '{"phone": "+8613800138000", "claims": {"name": ""}}',
])
def test_bad_bodies_are_400_problems_never_500(service: Service, body: str) -> None:
    response = service.call("POST", "/accounts", data=body,
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert problem_of(response)


def test_a_body_over_the_limit_is_413(app: Any, service: Service) -> None:
    app.config["IDP_API_MAX_BODY_BYTES"] = 1024
    response = service.call("POST", "/accounts", data="x" * 2048,
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and problem_of(response)


def test_unknown_paths_and_methods_are_problems(service: Service) -> None:
    assert problem_of(service.call("GET", "/nothing-here"))["status"] == 404
    assert problem_of(service.call("PUT", "/accounts"))["status"] == 405


def test_a_service_may_watch_the_event_backlog(service: Service, make_user: Any) -> None:
    sinks = service.call("GET", "/events/status").get_json()["sinks"]
    assert {s["sink"] for s in sinks} == {"push", "amqp"}
    assert all(s["dead"] == 0 and s["lag_seconds"] >= 0 for s in sinks)
