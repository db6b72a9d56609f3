"""undo_merge: the loser comes back with its own identities, claims, consents and `sub`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from idp.events.models import EventDelivery
from idp.events.sets import ACCOUNT_MERGED, ACCOUNT_UNMERGED
from idp.extensions import db
from idp.identity.accounts import identities_of, resolve_account, set_claim
from idp.identity.audit import Actor
from idp.identity.claims import profile_values
from idp.identity.merge import UndoRefused, merge_accounts, undo_merge
from idp.identity.models import AccountAlias, AccountStatus, MergeRecord, ProfileClaim
from idp.identity.rules import MergeRule, Proof
from idp.models_base import utcnow
from idp.oidc.models import Consent
from tests.conftest import CodeFlow, login
from tests.identity.conftest import age, audit_actions

ADMIN = Actor.admin("admin-1")


def admin_merge(survivor: Any, loser: Any) -> MergeRecord:
    return merge_accounts(
        survivor, loser, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("test"), actor=ADMIN
    )


def test_undo_restores_the_loser_with_its_identities_and_sub(
    make_user: Any, wechat_user: Any
) -> None:
    survivor = age(make_user(phone="+8613800138010"), 10)
    loser = wechat_user("openid-10", "unionid-10")
    survivor_ids = sorted(i.id for i in identities_of(survivor))
    loser_ids = sorted(i.id for i in identities_of(loser))
    record = admin_merge(survivor, loser)

    restored = undo_merge(record, ADMIN)

    assert restored.id == loser.id and restored.status == AccountStatus.ACTIVE
    assert restored.merged_into_id is None
    assert resolve_account(loser.id).id == loser.id
    assert db.session.get(AccountAlias, loser.id) is None
    assert sorted(i.id for i in identities_of(loser)) == loser_ids
    assert sorted(i.id for i in identities_of(survivor)) == survivor_ids
    assert db.session.get(MergeRecord, record.id).undone_at is not None


def test_undo_restores_the_claims_on_both_sides(make_user: Any) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    set_claim(survivor, "nickname", "older value", "wechat")
    set_claim(loser, "nickname", "newer value", "wechat")
    set_claim(loser, "picture", "https://img.example/l.png", "wechat")
    db.session.flush()
    db.session.scalars(
        select(ProfileClaim).where(ProfileClaim.account_id == survivor.id)
    ).one().updated_at = utcnow() - timedelta(days=2)
    db.session.commit()
    record = admin_merge(survivor, loser)
    assert profile_values(survivor)["nickname"][0] == "newer value"

    undo_merge(record, ADMIN)

    assert profile_values(survivor) == {"nickname": ("older value", "wechat")}
    assert profile_values(loser) == {
        "nickname": ("newer value", "wechat"),
        "picture": ("https://img.example/l.png", "wechat"),
    }


def test_undo_gives_back_the_losers_consents(make_user: Any, make_client: Any) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    shared = make_client(name="Shared")[0]
    db.session.add_all([
        Consent(account_id=survivor.id, client_id=shared.client_id, scopes=["openid"]),
        Consent(account_id=loser.id, client_id=shared.client_id, scopes=["openid", "phone"]),
    ])
    db.session.commit()
    record = admin_merge(survivor, loser)

    undo_merge(record, ADMIN)

    def scopes(account: Any) -> list[str]:
        return db.session.scalars(
            select(Consent).where(Consent.account_id == account.id)
        ).one().scopes

    assert scopes(survivor) == ["openid"] and sorted(scopes(loser)) == ["openid", "phone"]


def test_undo_is_audited_and_tells_the_relying_parties(make_user: Any, make_client: Any) -> None:
    subscribed = make_client(name="Subscribed", events_uri="https://rp.example/events")[0]
    survivor, loser = age(make_user(), 10), make_user()
    db.session.add(Consent(account_id=loser.id, client_id=subscribed.client_id, scopes=["openid"]))
    undo_merge(admin_merge(survivor, loser), ADMIN)

    assert "account.unmerge" in audit_actions(survivor.id)
    assert "account.restored" in audit_actions(loser.id)
    kinds = [row.event_type for row in db.session.scalars(
        select(EventDelivery).order_by(EventDelivery.id)
    )]
    assert kinds == [ACCOUNT_MERGED, ACCOUNT_UNMERGED]


def test_the_losers_old_tokens_stay_dead_after_undo(
    client: Any, make_user: Any, website: Any
) -> None:
    survivor = age(make_user(), 10)
    loser = make_user(phone="+8613800138011")
    login(client, "+8613800138011")
    tokens = CodeFlow(client, website[0], website[1]).tokens()
    undo_merge(admin_merge(survivor, loser), ADMIN)

    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=headers).status_code == 401


def test_undo_ends_sessions_opened_on_the_survivor_since_the_merge(
    client: Any, make_user: Any, website: Any
) -> None:
    survivor = age(make_user(), 10)
    loser = make_user(phone="+8613800138012")
    record = admin_merge(survivor, loser)
    # The loser's phone now signs in to the survivor: whoever that was, undo must cut them off.
    login(client, "+8613800138012")
    flow = CodeFlow(client, website[0], website[1])
    tokens = flow.tokens()
    assert tokens["access_token"]

    undo_merge(record, ADMIN)

    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=headers).status_code == 401
    assert flow.refresh(tokens["refresh_token"]).status_code == 400
    assert "/login" in flow.authorize().headers["Location"]


def test_undo_twice_is_refused(make_user: Any) -> None:
    record = admin_merge(age(make_user(), 10), make_user())
    undo_merge(record, ADMIN)
    with pytest.raises(UndoRefused) as refused:
        undo_merge(record, ADMIN)
    assert refused.value.code == "already_undone"
    assert "account.unmerge_refused" in audit_actions(record.loser_id)


def test_undo_is_refused_when_the_survivor_was_merged_since(make_user: Any) -> None:
    oldest, survivor, loser = age(make_user(), 20), age(make_user(), 10), make_user()
    first = admin_merge(survivor, loser)
    admin_merge(oldest, survivor)
    with pytest.raises(UndoRefused) as refused:
        undo_merge(first, ADMIN)
    assert refused.value.code == "survivor_merged_since"
    assert resolve_account(loser.id).id == oldest.id
