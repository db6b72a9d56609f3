"""merge_accounts: what moves, what merges, what dies, what is recorded (CONTRACT §7)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from idp.events.models import EventDelivery
from idp.events.sets import ACCOUNT_MERGED, event_type_uri
from idp.extensions import db
from idp.identity.accounts import identities_of, link_identity, resolve_account, set_claim
from idp.identity.audit import Actor
from idp.identity.claims import profile_values, user_claims
from idp.identity.merge import merge_accounts
from idp.identity.models import (
    AccountAlias,
    AccountStatus,
    AuditEvent,
    IdentityKind,
    LoginSession,
    MergeRecord,
    ProfileClaim,
)
from idp.identity.rules import MergeRefused, MergeRule, Proof
from idp.models_base import utcnow
from idp.oidc.models import Consent, RefreshToken
from tests.conftest import CodeFlow, login
from tests.identity.conftest import age, audit_actions

ADMIN = Actor.admin("admin-1")


def admin_merge(survivor: Any, loser: Any) -> MergeRecord:
    return merge_accounts(
        survivor, loser, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("same person"),
        actor=ADMIN,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_identity_moves_to_the_survivor(make_user: Any, wechat_user: Any) -> None:
    survivor = age(make_user(phone="+8613800138001"), 10)
    loser = wechat_user("openid-1", "unionid-1")
    moved = {(i.kind, i.value) for i in identities_of(loser)}

    admin_merge(survivor, loser)

    assert identities_of(loser) == []
    assert moved <= {(i.kind, i.value) for i in identities_of(survivor)}


def test_the_losers_sub_resolves_to_the_survivor_as_an_alias(make_user: Any) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    record = admin_merge(survivor, loser)

    db.session.expire_all()
    assert loser.status == AccountStatus.MERGED and loser.merged_into_id == survivor.id
    assert resolve_account(loser.id).id == survivor.id
    alias = db.session.get(AccountAlias, loser.id)
    assert alias is not None and alias.account_id == survivor.id and alias.merge_id == record.id
    assert resolve_account(survivor.id).id == survivor.id


def test_claims_merge_by_source_priority_then_recency(make_user: Any) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    old, new = utcnow() - timedelta(days=5), utcnow() - timedelta(days=1)
    set_claim(survivor, "name", "Alice (website)", "website")
    set_claim(survivor, "nickname", "ali-old", "wechat")
    set_claim(loser, "name", "Alice (typed by her)", "user")
    set_claim(loser, "nickname", "ali-new", "wechat")
    set_claim(loser, "picture", "https://img.example/a.png", "wechat")
    db.session.flush()
    _set_updated_at(survivor.id, "nickname", "wechat", old)
    _set_updated_at(loser.id, "nickname", "wechat", new)
    db.session.commit()

    admin_merge(survivor, loser)

    values = profile_values(survivor)
    assert values["name"] == ("Alice (typed by her)", "user")  # user beats website
    assert values["nickname"] == ("ali-new", "wechat")  # same source: the more recent wins
    assert values["picture"] == ("https://img.example/a.png", "wechat")  # only the loser knew it
    assert db.session.scalars(
        select(ProfileClaim).where(ProfileClaim.account_id == loser.id)
    ).all() == []


def test_the_merge_snapshot_keeps_the_claim_rows_that_lost(make_user: Any) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    set_claim(survivor, "nickname", "kept", "wechat")
    set_claim(loser, "nickname", "lost", "wechat")
    db.session.flush()
    _set_updated_at(loser.id, "nickname", "wechat", utcnow() - timedelta(days=3))
    db.session.commit()

    record = admin_merge(survivor, loser)

    assert profile_values(survivor)["nickname"] == ("kept", "wechat")
    dropped = record.snapshot["claims"]["dropped"]
    assert [(row["name"], row["value"]) for row in dropped] == [("nickname", "lost")]


def test_updated_at_changes_when_accounts_merge(make_user: Any) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    survivor.profile_updated_at = utcnow() - timedelta(days=10)
    db.session.commit()
    before = user_claims(survivor, "openid profile")["updated_at"]

    admin_merge(survivor, loser)

    assert user_claims(survivor, "openid profile")["updated_at"] > before


def test_merged_profile_serves_wechat_ids_and_the_verified_phone(
    make_user: Any, wechat_user: Any
) -> None:
    survivor = age(make_user(phone="+8613800138002"), 10)
    loser = wechat_user("openid-2", "unionid-2")
    admin_merge(survivor, loser)

    claims = user_claims(survivor, "openid phone wechat", client_appid="wxmini000000000001")
    assert claims["phone_number"] == "+8613800138002" and claims["phone_number_verified"]
    assert claims["wechat_unionid"] == "unionid-2"
    assert claims["wechat_openid"] == "openid-2"
    assert "wechat_openid" not in user_claims(survivor, "openid wechat", client_appid="wxother")


def test_consents_move_and_unite(make_user: Any, make_client: Any) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    both, only_loser = make_client(name="Both")[0], make_client(name="Loser's")[0]
    db.session.add_all([
        Consent(account_id=survivor.id, client_id=both.client_id, scopes=["openid", "phone"]),
        Consent(account_id=loser.id, client_id=both.client_id, scopes=["openid", "profile"]),
        Consent(account_id=loser.id, client_id=only_loser.client_id, scopes=["openid"]),
    ])
    db.session.commit()

    admin_merge(survivor, loser)

    consents = {
        row.client_id: sorted(row.scopes)
        for row in db.session.scalars(select(Consent).where(Consent.account_id == survivor.id))
    }
    assert consents == {
        both.client_id: ["openid", "phone", "profile"],
        only_loser.client_id: ["openid"],
    }
    assert db.session.scalars(select(Consent).where(Consent.account_id == loser.id)).all() == []


def test_the_losers_access_and_refresh_tokens_and_sessions_die(
    client: Any, make_user: Any, website: Any
) -> None:
    survivor = age(make_user(phone="+8613800138003"), 10)
    loser = make_user(phone="+8613800138004")
    login(client, "+8613800138004")
    flow = CodeFlow(client, website[0], website[1])
    tokens = flow.tokens(scope="openid profile offline_access")
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200

    admin_merge(survivor, loser)

    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    refreshed = flow.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    rows = db.session.scalars(select(RefreshToken).where(RefreshToken.account_id == loser.id))
    assert all(row.revoked_at is not None for row in rows)
    sessions = db.session.scalars(select(LoginSession).where(LoginSession.account_id == loser.id))
    assert all(row.ended_at is not None for row in sessions)
    # The browser's IdP session died too: authorizing again asks for a login.
    again = flow.authorize()
    assert again.status_code == 302 and "/login" in again.headers["Location"]


def test_the_survivors_tokens_live_on(client: Any, make_user: Any, website: Any) -> None:
    survivor = age(make_user(phone="+8613800138005"), 10)
    loser = make_user()
    login(client, "+8613800138005")
    tokens = CodeFlow(client, website[0], website[1]).tokens()

    admin_merge(survivor, loser)

    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200


def test_a_merge_is_audited_with_rule_proof_and_actor(make_user: Any) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    record = admin_merge(survivor, loser)

    assert "account.merge" in audit_actions(survivor.id)
    assert "account.merged_away" in audit_actions(loser.id)
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "account.merge")
    ).one()
    assert (event.actor_type, event.actor_id) == ("admin", "admin-1")
    assert event.reason == "admin_decision"
    assert event.details["merge_id"] == record.id
    assert event.details["proof"] == {"kind": "admin", "method": "admin", "note": "same person",
                                      "verified": True}


def test_a_merge_queues_an_event_for_each_subscribed_client_with_a_grant(
    make_user: Any, make_client: Any
) -> None:
    subscribed = make_client(name="Subscribed", events_uri="https://rp.example/events")[0]
    make_client(name="Not subscribed")
    survivor, loser = age(make_user(), 10), make_user()
    db.session.add(Consent(account_id=loser.id, client_id=subscribed.client_id, scopes=["openid"]))

    admin_merge(survivor, loser)

    rows = db.session.scalars(select(EventDelivery)).all()
    assert [(row.client_id, row.event_type) for row in rows] == [
        (subscribed.client_id, ACCOUNT_MERGED)
    ]
    claims = json.loads(rows[0].payload)
    assert claims["aud"] == subscribed.client_id
    event = claims["events"][event_type_uri(ACCOUNT_MERGED)]
    assert event["merged_sub"] == loser.id and event["surviving_sub"] == survivor.id
    assert event["subject"]["sub"] == loser.id


def test_a_merged_account_cannot_be_merged_again(make_user: Any) -> None:
    a, b, c = age(make_user(), 10), make_user(), make_user()
    admin_merge(a, b)
    with pytest.raises(MergeRefused) as refused:
        admin_merge(c, b)
    assert refused.value.code == "already_merged"


def test_a_refused_merge_changes_nothing_and_is_audited(make_user: Any) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    link_identity(loser, IdentityKind.EMAIL, "x@example.com", ADMIN, verified=True, proof="email")
    db.session.commit()
    with pytest.raises(MergeRefused) as refused:
        merge_accounts(
            survivor, loser, rule=MergeRule.SAME_VERIFIED_PHONE,
            proof=Proof(IdentityKind.EMAIL, "x@example.com", "email"), actor=Actor.rule("test"),
        )
    assert refused.value.code == "email_is_only_a_suggestion"
    assert loser.status == AccountStatus.ACTIVE
    assert db.session.scalars(select(MergeRecord)).all() == []
    assert "account.merge_refused" in audit_actions(loser.id)


def _set_updated_at(account_id: str, name: str, source: str, when: Any) -> None:
    row = db.session.scalars(
        select(ProfileClaim).where(
            ProfileClaim.account_id == account_id,
            ProfileClaim.name == name,
            ProfileClaim.source == source,
        )
    ).one()
    row.updated_at = when
