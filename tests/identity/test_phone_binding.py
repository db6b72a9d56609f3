"""bind_verified_phone: the website + mini-program + phone story (CONTRACT §6, §7)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.identity.accounts import identities_of, link_identity, resolve_account
from idp.identity.audit import Actor
from idp.identity.claims import user_claims
from idp.identity.links import AccountUnavailable, bind_verified_phone
from idp.identity.models import AccountStatus, Identity, IdentityKind, MergeRecord
from idp.identity.rules import MergeRefused, MergeRule
from tests.conftest import CodeFlow, login
from tests.identity.conftest import MINI_APPID, age, audit_actions

PHONE = "+8613800138030"


def phone_holders(phone: str = PHONE) -> list[tuple[str, bool]]:
    return [
        (row.account_id, row.verified)
        for row in db.session.scalars(
            select(Identity).where(Identity.value_is(phone, IdentityKind.PHONE))
        )
    ]


def test_a_new_phone_becomes_a_verified_identity(wechat_user: Any) -> None:
    account = wechat_user("openid-1", "unionid-1")
    after, merged = bind_verified_phone(account, PHONE, "wechat_phone", Actor.user(account.id))
    assert (after.id, merged) == (account.id, False)
    assert phone_holders() == [(account.id, True)]
    phone = identities_of(account, IdentityKind.PHONE)[0]
    assert phone.verified_by == "wechat_phone"
    assert "identity.link" in audit_actions(account.id)


def test_a_typed_in_phone_becomes_verified_in_place(wechat_user: Any) -> None:
    account = wechat_user("openid-2")
    link_identity(account, IdentityKind.PHONE, PHONE, Actor.user(account.id), verified=False)
    db.session.commit()
    bind_verified_phone(account, PHONE, "sms", Actor.user(account.id))
    assert phone_holders() == [(account.id, True)]
    assert "identity.verify" in audit_actions(account.id)


def test_binding_a_phone_already_held_is_a_no_op(wechat_user: Any) -> None:
    account = wechat_user("openid-3")
    bind_verified_phone(account, PHONE, "wechat_phone", Actor.user(account.id))
    assert bind_verified_phone(account, PHONE, "sms", Actor.user(account.id)) == (account, False)
    assert phone_holders() == [(account.id, True)]


def test_the_website_user_who_opens_the_mini_program_ends_with_one_account(
    client: Any, make_user: Any, wechat_user: Any, website: Any
) -> None:
    web = age(make_user(phone=PHONE, name="Alice"), 30)
    mini = wechat_user("openid-4", "unionid-4")

    survivor, merged = bind_verified_phone(mini, PHONE, "wechat_phone", Actor.user(mini.id))

    assert merged and survivor.id == web.id  # the older account keeps its sub
    assert resolve_account(mini.id).id == web.id
    assert phone_holders() == [(web.id, True)]
    record = db.session.scalars(select(MergeRecord)).one()
    assert (record.survivor_id, record.loser_id) == (web.id, mini.id)
    assert record.rule == MergeRule.SAME_VERIFIED_PHONE
    # The website still signs Alice in with her password, now with her WeChat ids served too.
    login(client, PHONE)
    tokens = CodeFlow(client, website[0], website[1]).tokens(scope="openid profile phone wechat")
    info = client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).get_json()
    assert info["sub"] == web.id and info["name"] == "Alice"
    assert info["phone_number"] == PHONE and info["wechat_unionid"] == "unionid-4"
    assert user_claims(survivor, "wechat", MINI_APPID)["wechat_openid"] == "openid-4"


def test_the_older_account_survives_whichever_side_binds(make_user: Any, wechat_user: Any) -> None:
    mini = age(wechat_user("openid-5", "unionid-5"), 30)
    web = make_user(phone=PHONE)
    survivor, merged = bind_verified_phone(mini, PHONE, "wechat_phone", Actor.user(mini.id))
    assert merged and survivor.id == mini.id
    assert resolve_account(web.id).id == mini.id
    db.session.expire_all()
    assert web.status == AccountStatus.MERGED


def test_the_merge_is_audited_as_the_rule_triggered_by_the_user(
    make_user: Any, wechat_user: Any
) -> None:
    web = age(make_user(phone=PHONE), 30)
    mini = wechat_user("openid-6")
    bind_verified_phone(mini, PHONE, "wechat_phone", Actor.user(mini.id))
    from idp.identity.models import AuditEvent

    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "account.merge")
    ).one()
    assert (event.actor_type, event.actor_id) == ("rule", MergeRule.SAME_VERIFIED_PHONE)
    assert event.details["triggered_by"] == f"user:{mini.id}"
    assert event.details["proof"]["value"] == PHONE
    assert event.details["proof"]["method"] == "wechat_phone"
    assert event.account_id == web.id


def test_an_unverified_copy_of_the_phone_elsewhere_does_not_merge(
    wechat_user: Any, make_user: Any
) -> None:
    typed = make_user()
    link_identity(typed, IdentityKind.PHONE, PHONE, Actor.user(typed.id), verified=False)
    db.session.commit()
    mini = wechat_user("openid-7")

    after, merged = bind_verified_phone(mini, PHONE, "wechat_phone", Actor.user(mini.id))

    assert (after.id, merged) == (mini.id, False)
    assert sorted(phone_holders()) == sorted([(typed.id, False), (mini.id, True)])
    assert db.session.scalar(select(func.count()).select_from(MergeRecord)) == 0


def test_a_phone_is_not_proved_by_anything_but_sms_or_wechat(wechat_user: Any) -> None:
    account = wechat_user("openid-8")
    for method in ("operator", "email", ""):
        with pytest.raises(MergeRefused) as refused:
            bind_verified_phone(account, PHONE, method, Actor.user(account.id))
        assert refused.value.code == "proof_method_not_accepted"
    assert phone_holders() == []


def test_a_refused_merge_leaves_the_phone_where_it_was(wechat_user: Any) -> None:
    holder = age(wechat_user("openid-9a", "unionid-9a"), 30)
    bind_verified_phone(holder, PHONE, "sms", Actor.user(holder.id))
    stranger = wechat_user("openid-9b", "unionid-9b")  # a recycled number, most likely

    with pytest.raises(MergeRefused) as refused:
        bind_verified_phone(stranger, PHONE, "wechat_phone", Actor.user(stranger.id))

    assert refused.value.code == "conflicting_wechat_identities"
    assert phone_holders() == [(holder.id, True)]
    db.session.expire_all()
    assert stranger.status == AccountStatus.ACTIVE
    assert "account.merge_refused" in audit_actions(stranger.id)


def test_a_disabled_account_binds_nothing(wechat_user: Any) -> None:
    account = wechat_user("openid-10")
    account.status = AccountStatus.DISABLED
    db.session.commit()
    with pytest.raises(AccountUnavailable):
        bind_verified_phone(account, PHONE, "sms", Actor.user(account.id))
    assert phone_holders() == []
