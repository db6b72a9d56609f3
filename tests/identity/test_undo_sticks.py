"""An admin's undo sticks (rules.py, rule 8): the undone merge record says the two accounts are
two people, so the proof that merged them once — the same verified phone, the same unionid —
never merges them automatically again. An admin still can."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.identity.accounts import resolve_account
from idp.identity.audit import Actor
from idp.identity.links import bind_verified_phone, resolve_wechat_identity
from idp.identity.merge import merge_accounts, undo_merge
from idp.identity.models import AccountStatus, AuditEvent, MergeRecord
from idp.identity.rules import MergeRefused, MergeRule, Proof
from tests.identity.conftest import MINI_APPID, OTHER_MINI_APPID, age

ADMIN = Actor.admin("admin-1")
PHONE = "+8613800138020"


def only_merge() -> MergeRecord:
    return db.session.scalars(sa.select(MergeRecord)).one()


def refusals() -> list[str]:
    return list(db.session.scalars(
        sa.select(AuditEvent.reason).where(AuditEvent.action == "account.merge_refused")
    ))


def test_the_same_verified_phone_never_remerges_an_undone_pair(
    make_user: Any, wechat_user: Any
) -> None:
    website = age(make_user(phone=PHONE), 10)
    mini = wechat_user("openid-20")
    survivor, merged = bind_verified_phone(mini, PHONE, "wechat_phone", Actor.user(mini.id))
    assert (survivor.id, merged) == (website.id, True)
    undo_merge(only_merge(), ADMIN)
    assert resolve_account(mini.id).id == mini.id

    with pytest.raises(MergeRefused) as refused:
        bind_verified_phone(mini, PHONE, "wechat_phone", Actor.user(mini.id))

    assert refused.value.code == "kept_apart_by_admin"
    assert "kept_apart_by_admin" in refusals()
    db.session.expire_all()
    assert resolve_account(mini.id).id == mini.id
    assert resolve_account(website.id).id == website.id
    assert len(db.session.scalars(sa.select(MergeRecord)).all()) == 1


def test_the_pair_is_kept_apart_either_way_round(make_user: Any, wechat_user: Any) -> None:
    """The admin had kept the younger account; the automatic rule would keep the older one."""
    website = age(make_user(phone=PHONE), 10)
    mini = wechat_user("openid-21")
    merge_accounts(mini, website, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("test"),
                   actor=ADMIN)
    undo_merge(only_merge(), ADMIN)
    with pytest.raises(MergeRefused) as refused:
        bind_verified_phone(mini, PHONE, "wechat_phone", Actor.user(mini.id))
    assert refused.value.code == "kept_apart_by_admin"


def test_the_same_unionid_never_remerges_an_undone_pair(wechat_user: Any) -> None:
    first = age(wechat_user("openid-a", "unionid-22"), 10)
    second = wechat_user("openid-b", appid=OTHER_MINI_APPID)
    account, _ = resolve_wechat_identity(
        OTHER_MINI_APPID, "openid-b", "unionid-22", "miniprogram", Actor.system("test")
    )
    assert account.id == first.id
    undo_merge(only_merge(), ADMIN)

    with pytest.raises(MergeRefused) as refused:
        resolve_wechat_identity(
            OTHER_MINI_APPID, "openid-b", "unionid-22", "miniprogram", Actor.system("test")
        )
    assert refused.value.code == "kept_apart_by_admin"
    db.session.expire_all()
    assert resolve_account(second.id).id == second.id
    # Each still signs in on its own.
    again, created = resolve_wechat_identity(
        MINI_APPID, "openid-a", "unionid-22", "miniprogram", Actor.system("test")
    )
    assert (again.id, created) == (first.id, False)


def test_an_admin_may_still_merge_an_undone_pair(make_user: Any, wechat_user: Any) -> None:
    website = age(make_user(phone=PHONE), 10)
    mini = wechat_user("openid-23")
    bind_verified_phone(mini, PHONE, "wechat_phone", Actor.user(mini.id))
    undo_merge(only_merge(), ADMIN)

    merge_accounts(website, mini, rule=MergeRule.ADMIN_DECISION,
                   proof=Proof.admin("the same person after all"), actor=ADMIN)
    db.session.expire_all()
    assert resolve_account(mini.id).id == website.id
    assert mini.status == AccountStatus.MERGED


def test_an_undone_merge_of_other_accounts_keeps_nobody_else_apart(
    make_user: Any, wechat_user: Any
) -> None:
    """Only the pair the admin separated: a third account still merges on the same proof."""
    website = age(make_user(phone=PHONE), 10)
    mini = wechat_user("openid-24")
    bind_verified_phone(mini, PHONE, "wechat_phone", Actor.user(mini.id))
    undo_merge(only_merge(), ADMIN)
    third = wechat_user("openid-25")
    survivor, merged = bind_verified_phone(third, PHONE, "wechat_phone", Actor.user(third.id))
    assert (survivor.id, merged) == (website.id, True)
