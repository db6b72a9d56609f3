"""Claims in one place (issue 24 item 5): every claim the IdP serves is a declaration of the data
dictionary, built in and operator-defined alike; the ID token, userinfo, discovery and the
admin's merge preview ask the same functions as the merge itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from idp.admin.merge_preview import claim_outcomes
from idp.extensions import db
from idp.identity.accounts import set_claim, write_claim
from idp.identity.audit import Actor
from idp.identity.catalogue import ClaimRefused, build_catalogue, catalogue, check_write
from idp.identity.claims import profile_values, user_claims
from idp.identity.merge import merge_accounts
from idp.identity.models import ProfileClaim
from idp.identity.rules import MergeRule, Proof
from idp.models_base import utcnow
from tests.identity.conftest import MINI_APPID, age
from tests.oidc.helpers import id_token_claims

EVERY_SCOPE = "openid profile email phone address wechat"


def test_every_claim_served_is_declared_in_the_data_dictionary__oidc_core_5_1(
        app: Any, make_user: Any, wechat_user: Any) -> None:
    survivor = age(make_user(phone="+8613800138031"), 10)
    merge_accounts(survivor, wechat_user("openid-31", "unionid-31"),
                   rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("same person"),
                   actor=Actor.admin("admin-1"))
    write_claim(survivor, "address", "1 Nanjing Road", Actor.user(survivor.id))
    write_claim(survivor, "nickname", "ali", Actor.user(survivor.id))
    db.session.commit()

    served = user_claims(survivor, EVERY_SCOPE, MINI_APPID)

    assert {"sub", "updated_at", "phone_number", "phone_number_verified", "wechat_unionid",
            "wechat_openid", "address", "nickname"} <= set(served)
    declared = catalogue()
    assert set(served) <= set(declared.claims)
    for name in served:  # each released by the scope its declaration names
        scope = declared.claims[name].scope
        assert name in user_claims(survivor, f"openid {scope}", MINI_APPID)
        others = " ".join(s for s in EVERY_SCOPE.split() if s not in (scope, "openid"))
        assert name == "sub" or name not in user_claims(survivor, f"openid {others}", MINI_APPID)


def test_discovery_lists_the_data_dictionary__discovery_3_claims_supported(client: Any) -> None:
    supported = client.get("/.well-known/openid-configuration").get_json()["claims_supported"]
    protocol = {"iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
                "at_hash"}
    assert [name for name in supported if name not in protocol] == sorted(catalogue().claims)


@pytest.mark.parametrize("name", ["sub", "updated_at", "phone_number", "phone_number_verified",
                                  "email", "email_verified", "wechat_unionid", "wechat_openid"])
def test_claims_of_the_account_and_its_identities_are_never_written_as_values(
        app: Any, name: str) -> None:
    for writer in ("user", "admin", "api", "website", "wechat"):
        with pytest.raises(ClaimRefused) as refused:
            check_write(name, "x", writer)
        assert refused.value.code == "unknown"


@pytest.mark.parametrize("name", ["phonenumber", "phone_number", "wechatopenid", "emailverified"])
def test_an_operator_claim_cannot_take_a_built_in_claims_name(name: str) -> None:
    with pytest.raises(ValueError, match="already a claim"):
        build_catalogue([{"name": name, "type": "string"}], None)


def test_the_id_token_and_userinfo_serve_the_same_claims__oidc_core_5_3_2(
        flow: Any, user: Any) -> None:
    write_claim(user, "nickname", "ali", Actor.user(user.id))
    write_claim(user, "birthdate", "1990-01-02", Actor.user(user.id))
    db.session.commit()

    tokens = flow.tokens(scope="openid profile phone email")
    info = flow.browser.get("/oauth/userinfo",
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    from_id_token = id_token_claims(flow.browser, tokens["id_token"])

    assert info.status_code == 200
    for name, value in info.get_json().items():
        assert from_id_token[name] == value, name
    assert {"nickname", "birthdate", "phone_number"} <= set(info.get_json())


def _backdate(account_id: str, name: str, source: str, days: int) -> None:
    db.session.execute(update(ProfileClaim).where(
        ProfileClaim.account_id == account_id, ProfileClaim.name == name,
        ProfileClaim.source == source).values(updated_at=utcnow() - timedelta(days=days)))


def test_the_merge_preview_shows_what_the_merge_then_serves(make_user: Any) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    set_claim(survivor, "name", "Alice (website)", "website")
    set_claim(loser, "name", "Alice (hers)", "user")  # a better source on the loser's side
    set_claim(survivor, "nickname", "old", "wechat")
    set_claim(loser, "nickname", "new", "wechat")  # same source: the more recent
    set_claim(survivor, "locale", "zh-CN", "wechat")
    set_claim(loser, "locale", "zh-CN", "wechat")  # the same value, newer
    set_claim(loser, "picture", "https://img.example/p.png", "wechat")  # the loser's alone
    set_claim(survivor, "gender", "female", "user")  # the survivor's alone
    db.session.flush()
    _backdate(survivor.id, "nickname", "wechat", 5)
    _backdate(loser.id, "nickname", "wechat", 1)
    _backdate(survivor.id, "locale", "wechat", 5)
    db.session.commit()

    preview = {outcome.name: outcome for outcome in claim_outcomes(survivor, loser)}
    merge_accounts(survivor, loser, rule=MergeRule.ADMIN_DECISION,
                   proof=Proof.admin("same person"), actor=Actor.admin("admin-1"))

    served = profile_values(survivor)
    assert {name: outcome.winner.value for name, outcome in preview.items() if outcome.winner} \
        == {name: value for name, (value, _source) in served.items()}
    assert preview["name"].winner_side == "loser" and preview["name"].why == "better_source"
    assert preview["nickname"].winner_side == "loser"  # the same source's more recent value
    assert preview["locale"].winner_side == "survivor"  # the same value: nothing replaced
    assert preview["picture"].why == "only_value" and preview["gender"].why == "only_value"
