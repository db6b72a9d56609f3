"""Issue 27 item 1: the role × action table (`idp.staff.permissions.ACTIONS`) is what every admin
page and every management-API operation enforces.

The walk iterates the app's own URL map and the API's own OpenAPI document, so a page or an
operation added without a place in the table fails here.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.admin.access import ROUTE_ACTIONS
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.staff.permissions import ACTIONS, API_SCOPE_DUTIES, Role
from idp.staff.roles import RoleRefused, grant_role, revoke_role, roles_of
from tests.admin.conftest import enrol_totp, grant_roles, text_of
from tests.api.conftest import ALL_SCOPES, Service
from tests.conftest import csrf_token, login

ROLE_PHONES = {
    Role.SUPPORT: "+8613900000101",
    Role.IDENTITY: "+8613900000102",
    Role.SECURITY: "+8613900000103",
    Role.AUDITOR: "+8613900000104",
}
WALKED_METHODS = ("GET", "POST")


def _signed_in_as(app: Flask, make_user: Any, role: Role) -> tuple[FlaskClient, str]:
    """A browser of an admin holding only `role`, second factor passed, and its CSRF token."""
    account = make_user(phone=ROLE_PHONES[role], name=f"{role} admin")
    grant_roles(account, role)
    browser = app.test_client()
    login(browser, ROLE_PHONES[role])
    enrol_totp(browser)
    page = browser.get("/admin/")
    assert page.status_code == 200, (role, page.status_code)
    return browser, csrf_token(page.get_data(as_text=True))


def _sample_url(rule: Any) -> str:
    values = {}
    for name in rule.arguments:
        converter = rule._converters.get(name)  # noqa: SLF001 - the rule's own parameter types
        if type(converter).__name__ == "IntegerConverter":
            values[name] = 999_999
        elif name == "role":
            values[name] = "support"
        else:
            values[name] = "0" * 8
    return rule.build(values, append_unknown=False)[1]


def _admin_rules(app: Flask) -> list[Any]:
    return sorted((rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("admin.")),
                  key=lambda rule: rule.endpoint)


def test_every_admin_page_names_an_action_of_the_table(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in _admin_rules(app)}
    assert endpoints - ROUTE_ACTIONS.keys() == set(), "an admin page without a role check"
    assert ROUTE_ACTIONS.keys() - endpoints == set(), "a table row for a page that is gone"
    assert set(ROUTE_ACTIONS.values()) - ACTIONS.keys() == set()


@pytest.mark.parametrize("role", list(Role))
def test_each_role_reaches_exactly_the_pages_the_table_gives_it(
    app: Flask, make_user: Any, role: Role
) -> None:
    browser, token = _signed_in_as(app, make_user, role)
    mismatches = []
    walked = 0
    # Revoke-all ends nothing of the admin's own session, but walk it last all the same.
    rules = sorted(_admin_rules(app), key=lambda rule: rule.endpoint == "admin.tokens_revoke_all")
    for rule in rules:
        allowed = role in ACTIONS[ROUTE_ACTIONS[rule.endpoint]]
        url = _sample_url(rule)
        for method in WALKED_METHODS:
            if method not in rule.methods:
                continue
            walked += 1
            data = {"csrf_token": token} if method == "POST" else None
            response = browser.open(url, method=method, data=data)
            location = response.headers.get("Location", "")
            if rule.endpoint not in ("admin.totp_enrol", "admin.totp_verify"):
                assert not location.startswith(("/login", "/admin/totp")), (rule.endpoint, location)
            if (response.status_code == 403) == allowed:
                mismatches.append((method, rule.endpoint, response.status_code, allowed))
    assert walked > 40
    assert mismatches == []


def test_a_role_holder_sees_only_the_menu_entries_of_their_role(
    app: Flask, make_user: Any
) -> None:
    browser, _token = _signed_in_as(app, make_user, Role.AUDITOR)
    menu = text_of(browser.get("/admin/")).split("<nav>", 1)[1].split("</nav>", 1)[0]
    assert "/admin/audit" in menu and "/admin/events" in menu
    assert "/admin/accounts" not in menu and "/admin/keys" not in menu


def test_an_account_without_a_role_is_refused_even_with_the_old_flag(
    client: FlaskClient, make_user: Any
) -> None:
    account = make_user(phone="+8613900000109")
    account.is_admin = True  # what an admin was before roles: no longer enough
    db.session.commit()
    login(client, "+8613900000109")
    assert client.get("/admin/").status_code == 403


def test_the_bootstrap_admin_holds_security(make_user: Any) -> None:
    account = make_user(phone="+8613900000110", admin=True)
    assert roles_of(account.id) == {"security"}


def test_strict_separation_refuses_security_or_auditor_beside_another_role(
    app: Flask, make_user: Any
) -> None:
    app.config["IDP_ADMIN_SEPARATION"] = "strict"
    security = make_user(phone="+8613900000111", admin=True)
    with pytest.raises(RoleRefused) as refused:
        grant_role(security, Role.SUPPORT, Actor.system("test"))
    assert refused.value.code == "separation_of_duties"
    helper = make_user(phone="+8613900000112")
    grant_role(helper, Role.SUPPORT, Actor.system("test"))
    grant_role(helper, Role.IDENTITY, Actor.system("test"))  # neither must be alone
    db.session.commit()
    with pytest.raises(RoleRefused):
        grant_role(helper, Role.AUDITOR, Actor.system("test"))
    db.session.rollback()
    assert roles_of(helper.id) == {"support", "identity"}
    app.config["IDP_ADMIN_SEPARATION"] = "relaxed"
    assert grant_role(security, Role.AUDITOR, Actor.system("test"))


def test_the_last_security_admin_keeps_the_role(make_user: Any) -> None:
    account = make_user(phone="+8613900000113", admin=True)
    with pytest.raises(RoleRefused):
        revoke_role(account, Role.SECURITY, Actor.system("test"))
    other = make_user(phone="+8613900000114", admin=True)
    assert revoke_role(account, Role.SECURITY, Actor.system("test"))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Account, account.id).is_admin is False
    assert roles_of(other.id) == {"security"}


def test_security_grants_a_role_on_the_admins_page_and_it_is_audited(
    app: Flask, make_user: Any
) -> None:
    browser, token = _signed_in_as(app, make_user, Role.SECURITY)
    helper = make_user(phone="+8613900000115")
    response = browser.post("/admin/admins/grant", data={
        "who": "+86 139 0000 0115", "role": "support", "reason": "new hire", "csrf_token": token,
    })
    assert response.status_code == 302
    assert roles_of(helper.id) == {"support"}
    from tests.admin.conftest import audit_of

    [event] = audit_of("admin.role_grant")[-1:]
    assert event.account_id == helper.id and event.details == {"role": "support"}
    assert event.reason == "new hire" and event.actor_type == "admin"


# --- the management API ------------------------------------------------------------------------

def _api_operations(browser: FlaskClient) -> list[tuple[str, str, list[str]]]:
    document = browser.get("/api/v1/openapi.json").get_json()
    operations = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            scopes = [scope for requirement in operation.get("security", [])
                      for scope in requirement.get("client", [])]
            operations.append((method.upper(), path, scopes))
    return operations


def _sample_api_path(path: str) -> str:
    return (path.replace("{sub}", str(uuid.uuid4())).replace("{identity_id}", "999999")
            .replace("{merge_id}", "999999").replace("{handle}", "0" * 16)
            .replace("{family}", "0" * 16))


def test_every_api_route_is_an_operation_of_the_document(app: Flask, client: FlaskClient) -> None:
    documented = {(method, "/api/v1" + path.replace("{", "<").replace("}", ">"))
                  for method, path, _scopes in _api_operations(client)}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_document":
            path = re.sub(r"<[^<>:]+:(\w+)>", r"<\1>", rule.rule)  # <int(max=…):id> → <id>
            served |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == documented


def test_each_api_operation_needs_exactly_its_scope(
    client: FlaskClient, make_client: Any
) -> None:
    registered, secret = make_client(
        name="Walker", grant_types=["client_credentials"], scope=ALL_SCOPES
    )
    service = Service(client, registered.client_id, secret)
    tokens = {scope: service.get_token(scope) for scope in ALL_SCOPES.split()}
    mismatches = []
    for method, path, scopes in _api_operations(client):
        assert len(scopes) == 1 and scopes[0] in API_SCOPE_DUTIES, (method, path, scopes)
        url = "/api/v1" + _sample_api_path(path)
        for scope, token in tokens.items():
            response = client.open(url, method=method, json={},
                                   headers={"Authorization": f"Bearer {token}"})
            refused = response.status_code in (401, 403)
            if refused != (scope != scopes[0]):
                mismatches.append((method, path, scope, response.status_code))
    assert mismatches == []


def test_the_readme_role_table_is_the_enforced_one() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("| action | what | support | identity | security | auditor |", 1)[1]
    rows = {}
    for line in table.split("\n\n", 1)[0].strip().splitlines()[1:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = {role for role, cell in zip(Role, cells[2:], strict=True)
                                        if cell == "✓"}
    assert rows == {action: set(roles) for action, roles in ACTIONS.items()}


def test_the_auditor_reads_the_trail_filtered_by_actor_account_action_and_time(
    app: Flask, make_user: Any
) -> None:
    from idp.identity import audit

    browser, _token = _signed_in_as(app, make_user, Role.AUDITOR)
    subject = make_user(phone="+8613900000120")
    audit.record("test.filtered", Actor.admin("someone"), subject.id, reason="kept")
    audit.record("test.other", Actor.admin("someone-else"), None, reason="not shown")
    db.session.commit()
    for query in (f"account={subject.id}", "action=test.filtered", "actor=admin:someone",
                  "since=2000-01-01&action=test.filtered"):
        page = text_of(browser.get(f"/admin/audit?{query}"))
        assert "test.filtered" in page and "not shown" not in page, query
    assert "No records match" in text_of(browser.get("/admin/audit?until=2000-01-01"))
