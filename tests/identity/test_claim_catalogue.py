"""The profile (OIDC Core §5.1, §5.1.1), operator-defined claims and the conflict rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from idp import create_app
from idp.errors import ConfigError
from idp.extensions import db
from idp.identity.accounts import set_claim, write_claim
from idp.identity.audit import Actor
from idp.identity.catalogue import ClaimRefused, build_catalogue, check_write
from idp.identity.claims import profile_values, user_claims
from idp.identity.merge import merge_accounts
from idp.identity.models import ProfileClaim
from idp.identity.rules import MergeRule, Proof
from tests.oidc.helpers import id_token_claims

MEMBER_LEVEL = {"name": "member_level", "type": "integer", "scope": "profile",
                "writers": ["admin", "api"], "description": "Loyalty level, 0-5."}
STORE_ID = {"name": "store_id", "type": "string", "scope": "address", "writers": ["user"]}


@pytest.fixture
def website(make_client: Any) -> tuple[Any, str]:
    """A client registered for the `address` scope too (not in a new client's default)."""
    return make_client(name="Website", redirect_uris=["https://rp.example/callback"],
                       scope="openid profile phone email address offline_access")


def test_address_gender_birthdate_served_with_their_scopes__oidc_core_5_1_1(
        flow: Any, user: Any) -> None:
    write_claim(user, "address", json.dumps({
        "street_address": "1 Nanjing Road", "locality": "Shanghai", "country": "CN",
        "formatted": "1 Nanjing Road\nShanghai, CN"}), Actor.user(user.id))
    write_claim(user, "gender", "female", Actor.user(user.id))
    write_claim(user, "birthdate", "0000-03-14", Actor.user(user.id))
    db.session.commit()

    tokens = flow.tokens(scope="openid profile address")
    info = flow.browser.get("/oauth/userinfo",
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    claims = info.get_json()
    assert claims["address"] == {"formatted": "1 Nanjing Road\nShanghai, CN",
                                 "street_address": "1 Nanjing Road", "locality": "Shanghai",
                                 "country": "CN"}
    assert claims["gender"] == "female"
    assert claims["birthdate"] == "0000-03-14"

    without = flow.tokens(scope="openid profile")
    info = flow.browser.get("/oauth/userinfo",
                            headers={"Authorization": f"Bearer {without['access_token']}"})
    assert "address" not in info.get_json()
    assert info.get_json()["gender"] == "female"


def test_discovery_advertises_address_scope__oidc_discovery_3(client: Any) -> None:
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert "address" in metadata["scopes_supported"]
    assert {"address", "gender", "birthdate"} <= set(metadata["claims_supported"])


@pytest.mark.parametrize("value", ["1990-02-30", "90-01-01", "1990/01/01", "19900101", "x"])
def test_birthdate_refused_unless_oidc_form__oidc_core_5_1(app: Any, value: str) -> None:
    with pytest.raises(ClaimRefused):
        check_write("birthdate", value, "user")


@pytest.mark.parametrize("value", ["1990-02-28", "0000-02-28", "1990"])
def test_birthdate_accepted_forms__oidc_core_5_1(app: Any, value: str) -> None:
    assert check_write("birthdate", value, "user") == value


@pytest.mark.parametrize("value", [{"city": "Shanghai"}, "{not json", {"formatted": 5}, ["x"]])
def test_address_refused_unless_oidc_parts__oidc_core_5_1_1(app: Any, value: Any) -> None:
    with pytest.raises(ClaimRefused):
        check_write("address", value, "user")


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["IDP_CUSTOM_CLAIMS"] = json.dumps([MEMBER_LEVEL, STORE_ID])
    return app_config


def test_operator_claim_served_in_id_token_and_userinfo_when_granted__oidc_core_5_4(
        flow: Any, user: Any, admin_actor: Actor) -> None:
    write_claim(user, "member_level", "3", admin_actor)
    db.session.commit()
    tokens = flow.tokens(scope="openid profile")
    id_token = id_token_claims(flow.browser, tokens["id_token"])
    info = flow.browser.get("/oauth/userinfo",
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.get_json()["member_level"] == 3  # typed as declared
    assert id_token["member_level"] == 3

    narrow = flow.tokens(scope="openid phone")
    info = flow.browser.get("/oauth/userinfo",
                            headers={"Authorization": f"Bearer {narrow['access_token']}"})
    assert "member_level" not in info.get_json()


@pytest.fixture
def admin_actor(make_user: Any) -> Actor:
    return Actor.admin(make_user(phone="+8613911110000", admin=True).id)


def test_discovery_lists_operator_claims__oidc_discovery_3(client: Any) -> None:
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert {"member_level", "store_id"} <= set(metadata["claims_supported"])


def test_operator_claim_validated_on_write(app: Any, user: Any, admin_actor: Actor) -> None:
    for bad in ("three", "1.5", "", "9" * 20):
        if bad == "":
            assert write_claim(user, "member_level", bad, admin_actor) is False
            continue
        with pytest.raises(ClaimRefused):
            write_claim(user, "member_level", bad, admin_actor)
    with pytest.raises(ClaimRefused, match="user may not write it"):
        write_claim(user, "member_level", "3", Actor.user(user.id))
    with pytest.raises(ClaimRefused, match="unknown claim"):
        write_claim(user, "memberlevel", "3", admin_actor)
    assert write_claim(user, "store_id", "SH-001", Actor.user(user.id)) is True
    db.session.commit()
    assert user_claims(user, "openid address")["store_id"] == "SH-001"


@pytest.mark.parametrize("declaration, message", [
    ({"name": "nick_name"}, "already a claim"),
    ({"name": "phone_number"}, "already a claim"),
    ({"name": "Member"}, "not a claim name"),
    ({"name": "level", "type": "float"}, "type must be"),
    ({"name": "level", "scope": "offline_access"}, "scope must be"),
    ({"name": "level", "writers": ["wechat"]}, "writers must be"),
])
def test_declarations_refused_one_name_per_field(declaration: dict[str, Any],
                                                 message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_catalogue([declaration], None)


def test_bad_settings_stop_start_up(tmp_path: Any) -> None:
    from tests.conftest import base_config

    config = base_config(tmp_path, f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(ConfigError, match="IDP_CLAIM_PRIORITY"):
        create_app({**config, "IDP_CLAIM_PRIORITY": '{"nickname": ["phone"]}'})
    with pytest.raises(ConfigError, match="unknown claims"):
        create_app({**config, "IDP_CLAIM_PRIORITY": '{"nick_name": ["user"]}'})
    with pytest.raises(ConfigError, match="not valid JSON"):
        create_app({**config, "IDP_CUSTOM_CLAIMS": "[{"})


def _sources(account_id: str, name: str) -> dict[str, str]:
    rows = db.session.execute(sa.select(ProfileClaim.source, ProfileClaim.value).where(
        ProfileClaim.account_id == account_id, ProfileClaim.name == name)).all()
    return dict(rows)


def test_changing_the_rule_reevaluates_served_values_keeping_every_source(
        app: Any, user: Any) -> None:
    set_claim(user, "nickname", "Alice (typed)", "user")
    set_claim(user, "nickname", "爱丽丝", "wechat")
    db.session.commit()
    assert user_claims(user, "openid profile")["nickname"] == "Alice (typed)"  # user > wechat

    app.config["IDP_CLAIM_PRIORITY"] = {"nickname": ["wechat", "user"]}  # 以小程序端数据为准
    assert user_claims(user, "openid profile")["nickname"] == "爱丽丝"
    assert profile_values(user)["nickname"] == ("爱丽丝", "wechat")
    assert _sources(user.id, "nickname") == {"user": "Alice (typed)", "wechat": "爱丽丝"}
    assert user_claims(user, "openid profile")["name"] == "Alice"  # other claims: the default

    app.config["IDP_CLAIM_PRIORITY"] = None
    assert user_claims(user, "openid profile")["nickname"] == "Alice (typed)"


def test_later_writes_follow_the_rule(app: Any, user: Any) -> None:
    app.config["IDP_CLAIM_PRIORITY"] = {"*": ["wechat", "website", "user"]}
    set_claim(user, "picture", "https://wx.example/p.png", "wechat")
    db.session.commit()
    write_claim(user, "picture", "https://me.example/p.png", Actor.user(user.id))  # later, lower
    db.session.commit()
    assert user_claims(user, "openid profile")["picture"] == "https://wx.example/p.png"
    assert _sources(user.id, "picture")["user"] == "https://me.example/p.png"


def test_merge_follows_the_rule(app: Any, user: Any, make_user: Any) -> None:
    other = make_user(phone="+8613800138999", name="Alice W")
    set_claim(user, "nickname", "typed", "user")
    set_claim(other, "nickname", "from wechat", "wechat")
    db.session.commit()
    app.config["IDP_CLAIM_PRIORITY"] = {"nickname": ["wechat", "user"]}
    merge_accounts(user, other, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("test"),
                   actor=Actor.admin(user.id))
    db.session.commit()
    assert user_claims(user, "openid profile")["nickname"] == "from wechat"
    assert _sources(user.id, "nickname") == {"user": "typed", "wechat": "from wechat"}
