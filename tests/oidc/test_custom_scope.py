"""An operator's claim released by a scope of its own (issue 16): declared with a new scope name,
the scope is known to the IdP (discovery, client registration, the authorization server), shown
on the consent page, and releases its claim in the ID token and userinfo only when granted
(OIDC Core §5.4 style)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from idp.cli import clients as clients_command
from idp.extensions import db
from idp.identity.accounts import write_claim
from idp.identity.audit import Actor
from idp.identity.catalogue import build_catalogue, declare_claim
from tests.conftest import CodeFlow, login
from tests.oidc.helpers import id_token_claims

MEMBER_LEVEL = {"name": "member_level", "type": "integer", "scope": "member",
                "writers": ["admin", "api"], "description": "Loyalty level, 0-5.",
                "scope_description": "See your membership level"}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["IDP_CUSTOM_CLAIMS"] = json.dumps([MEMBER_LEVEL])
    return app_config


@pytest.fixture
def member_site(make_client: Any) -> tuple[Any, str]:
    return make_client(name="Member shop", redirect_uris=["https://rp.example/callback"],
                       scope="openid profile member")


@pytest.fixture
def member_flow(client: FlaskClient, member_site: tuple[Any, str], user: Any) -> CodeFlow:
    write_claim(user, "member_level", 4, Actor("admin", "ops"))
    db.session.commit()
    login(client, "+8613800138000")
    return CodeFlow(client, member_site[0], member_site[1])


def userinfo(flow: CodeFlow, access_token: str) -> dict[str, Any]:
    response = flow.browser.get("/oauth/userinfo",
                                headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200
    return dict(response.get_json())


def test_discovery_lists_the_operators_scope__oidc_discovery_3(client: FlaskClient) -> None:
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert "member" in metadata["scopes_supported"]
    assert "member_level" in metadata["claims_supported"]
    assert metadata["scopes_supported"][:1] == ["openid"]


def test_granted_scope_releases_the_claim_in_id_token_and_userinfo__oidc_core_5_4(
    member_flow: CodeFlow,
) -> None:
    consent = member_flow.browser.get(
        "/oauth/authorize", query_string=member_flow.authorize_params(scope="openid member"))
    assert consent.status_code == 200
    assert "See your membership level" in consent.get_data(as_text=True)

    tokens = member_flow.tokens(scope="openid member")
    assert tokens["scope"].split() == ["openid", "member"]
    assert id_token_claims(member_flow.browser, tokens["id_token"])["member_level"] == 4
    info = userinfo(member_flow, tokens["access_token"])
    assert info["member_level"] == 4
    assert "name" not in info  # `profile` was not asked


def test_without_the_scope_the_claim_is_not_released__oidc_core_5_4(
    member_flow: CodeFlow,
) -> None:
    tokens = member_flow.tokens(scope="openid profile")
    assert "member_level" not in id_token_claims(member_flow.browser, tokens["id_token"])
    info = userinfo(member_flow, tokens["access_token"])
    assert "member_level" not in info and info["name"] == "Alice"


def test_a_client_not_registered_for_the_scope_does_not_get_it__rfc6749_3_3(
    flow: CodeFlow,
) -> None:
    """The default `website` client was registered without `member`."""
    tokens = flow.tokens(scope="openid profile member")
    assert "member" not in tokens["scope"].split()
    assert "member_level" not in userinfo(flow, tokens["access_token"])


def test_an_unknown_scope_is_still_invalid_scope__rfc6749_4_1_2_1(member_flow: CodeFlow) -> None:
    response = member_flow.authorize(scope="openid members")
    assert response.status_code == 302
    assert "error=invalid_scope" in response.headers["Location"]


def test_a_scope_declared_in_the_admin_ui_is_known_at_once(
    app: Any, client: FlaskClient, make_client: Any, user: Any
) -> None:
    declare_claim({"name": "store_id", "type": "string", "scope": "stores",
                   "writers": ["admin"]})
    db.session.commit()
    assert "stores" in client.get("/.well-known/openid-configuration").get_json()[
        "scopes_supported"]
    site, secret = make_client(name="Stores", redirect_uris=["https://rp.example/callback"],
                               scope="openid stores")
    write_claim(user, "store_id", "SH-001", Actor("admin", "ops"))
    db.session.commit()
    login(client, "+8613800138000")
    flow = CodeFlow(client, site, secret)
    page = client.get("/oauth/authorize", query_string=flow.authorize_params(
        scope="openid stores")).get_data(as_text=True)
    assert "See your store_id" in page  # no declared description: the generic one
    tokens = flow.tokens(scope="openid stores")
    assert userinfo(flow, tokens["access_token"])["store_id"] == "SH-001"


def test_the_cli_registers_a_client_for_the_operators_scope(app: Any) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(clients_command, [
        "create", "--name", "Shop", "--redirect-uri", "https://rp.example/cb",
        "--scope", "openid member", "--json"])
    assert result.exit_code == 0, result.output
    refused = runner.invoke(clients_command, [
        "create", "--name", "Shop", "--redirect-uri", "https://rp.example/cb",
        "--scope", "openid members", "--json"])
    assert refused.exit_code != 0 and "unknown scopes: members" in refused.output


@pytest.mark.parametrize("scope", [
    "openid", "offline_access", "idp:accounts.read", "idp:anything", "two words", 'quo"te',
    "back\\slash", "x" * 33, "", "caf\u00e9",
])
def test_builtin_names_and_bad_syntax_are_refused__rfc6749_3_3(scope: str) -> None:
    with pytest.raises(ValueError, match="scope must be"):
        build_catalogue([{"name": "level", "scope": scope}], None)


def test_a_scope_description_is_only_for_a_scope_of_its_own() -> None:
    with pytest.raises(ValueError, match="scope_description"):
        build_catalogue([{"name": "level", "scope": "profile", "scope_description": "x"}], None)
