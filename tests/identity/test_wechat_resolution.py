"""resolve_wechat_identity: one WeChat user, one account, across apps and over time."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.identity.accounts import IdentityTaken, identities_of, resolve_account
from idp.identity.audit import Actor
from idp.identity.links import link_wechat_to_account, resolve_wechat_identity
from idp.identity.models import Account, AccountStatus, IdentityKind, MergeRecord
from idp.identity.rules import MergeRefused, MergeRule
from tests.identity.conftest import MINI_APPID, OTHER_MINI_APPID, WEB_APPID, age, audit_actions

ACTOR = Actor.system("test")


def resolve(openid: str, unionid: str | None, appid: str = MINI_APPID) -> tuple[Account, bool]:
    return resolve_wechat_identity(appid, openid, unionid, "miniprogram", ACTOR)


def account_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Account))


def held(account: Account) -> set[tuple[str, str, str]]:
    return {(i.kind, i.namespace, i.value) for i in identities_of(account)}


def test_a_first_login_creates_an_account_with_openid_and_unionid(app: Any) -> None:
    account, created = resolve("openid-1", "unionid-1")
    assert created and account.created_via == "miniprogram"
    assert held(account) == {
        (IdentityKind.WECHAT_OPENID, MINI_APPID, "openid-1"),
        (IdentityKind.WECHAT_UNIONID, "", "unionid-1"),
    }
    assert all(identity.verified for identity in identities_of(account))
    assert audit_actions(account.id)[:1] == ["account.create"]


def test_the_same_openid_finds_the_same_account(app: Any) -> None:
    first, _ = resolve("openid-2", None)
    again, created = resolve("openid-2", None)
    assert again.id == first.id and not created and account_count() == 1


def test_the_same_openid_in_another_app_is_another_user(app: Any) -> None:
    first, _ = resolve("openid-3", None, MINI_APPID)
    other, created = resolve("openid-3", None, OTHER_MINI_APPID)
    assert created and other.id != first.id


def test_the_same_unionid_from_another_app_is_the_same_account(app: Any) -> None:
    mini, _ = resolve("openid-mini", "unionid-4", MINI_APPID)
    website, created = resolve("openid-web", "unionid-4", WEB_APPID)
    assert website.id == mini.id and not created
    assert (IdentityKind.WECHAT_OPENID, WEB_APPID, "openid-web") in held(mini)


def test_a_unionid_that_appears_later_is_attached_not_duplicated(app: Any) -> None:
    account, _ = resolve("openid-5", None)
    later, created = resolve("openid-5", "unionid-5")
    assert later.id == account.id and not created and account_count() == 1
    assert (IdentityKind.WECHAT_UNIONID, "", "unionid-5") in held(account)


def test_openid_and_unionid_on_two_accounts_merge_into_the_older(app: Any) -> None:
    mini = age(resolve("openid-6", None, MINI_APPID)[0], 10)  # app not yet on the Open Platform
    website = resolve("openid-6w", "unionid-6", WEB_APPID)[0]

    account, created = resolve("openid-6", "unionid-6", MINI_APPID)

    assert account.id == mini.id and not created
    assert resolve_account(website.id).id == mini.id
    record = db.session.scalars(select(MergeRecord)).one()
    assert record.rule == MergeRule.SAME_WECHAT_UNIONID and record.actor == "rule:" + record.rule
    assert held(mini) >= {
        (IdentityKind.WECHAT_OPENID, MINI_APPID, "openid-6"),
        (IdentityKind.WECHAT_OPENID, WEB_APPID, "openid-6w"),
        (IdentityKind.WECHAT_UNIONID, "", "unionid-6"),
    }


def test_an_openid_whose_account_holds_another_unionid_is_refused(app: Any) -> None:
    account, _ = resolve("openid-7", "unionid-7")
    with pytest.raises(MergeRefused) as refused:
        resolve("openid-7", "unionid-other")
    assert refused.value.code == "conflicting_wechat_identities"
    assert (IdentityKind.WECHAT_UNIONID, "", "unionid-other") not in held(account)
    assert "account.merge_refused" in audit_actions(account.id)


def test_a_disabled_account_is_found_but_gets_nothing_new(app: Any) -> None:
    account, _ = resolve("openid-8", None)
    account.status = AccountStatus.DISABLED
    db.session.commit()
    found, created = resolve("openid-8", "unionid-8")
    assert found.id == account.id and not created and not found.is_active
    assert (IdentityKind.WECHAT_UNIONID, "", "unionid-8") not in held(account)


def test_binding_wechat_to_a_password_account(make_user: Any) -> None:
    user = make_user()
    link_wechat_to_account(user, WEB_APPID, "openid-9", "unionid-9", Actor.user(user.id))
    assert resolve("openid-9", "unionid-9", WEB_APPID)[0].id == user.id


def test_binding_wechat_ids_held_by_another_account_is_refused(make_user: Any) -> None:
    other, _ = resolve("openid-10", "unionid-10", WEB_APPID)
    user = make_user()
    with pytest.raises(IdentityTaken):
        link_wechat_to_account(user, WEB_APPID, "openid-10", "unionid-10", Actor.user(user.id))
    assert identities_of(other) and resolve("openid-10", None, WEB_APPID)[0].id == other.id
