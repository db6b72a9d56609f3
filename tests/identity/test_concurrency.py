"""Real threads against the real databases: racing first logins make one account, racing phone
bindings make one merge, and a verified phone is never held by two accounts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from idp.extensions import db
from idp.identity.accounts import resolve_account
from idp.identity.audit import Actor
from idp.identity.links import bind_verified_phone, resolve_wechat_identity
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind, MergeRecord
from tests.identity.conftest import MINI_APPID, OTHER_MINI_APPID, WEB_APPID, age

THREADS = 6
PHONE = "+8613800138060"


def race(app: Flask, count: int, work: Callable[[int], Any]) -> list[Any]:
    """Runs `work(i)` in `count` threads released at once, each in its own app context (and so
    its own database session); returns results or exceptions, in order."""
    db.session.commit()  # the test's own session holds no transaction while they race
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        with app.app_context():
            barrier.wait(timeout=10)
            try:
                results[index] = work(index)
            except Exception as error:  # noqa: BLE001 - reported to the test below
                results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    errors = [result for result in results if isinstance(result, Exception)]
    assert not errors, errors
    db.session.expire_all()
    return results


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_simultaneous_first_logins_with_one_openid_create_one_account(app: Flask) -> None:
    def login(_: int) -> tuple[str, bool]:
        account, created = resolve_wechat_identity(
            MINI_APPID, "openid-race", "unionid-race", "miniprogram", Actor.system("test")
        )
        return account.id, created

    results = race(app, THREADS, login)

    assert len({account_id for account_id, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
    assert count(Account) == 1
    assert count(Identity) == 2


def test_simultaneous_first_logins_with_one_unionid_from_three_apps_create_one_account(
    app: Flask,
) -> None:
    apps = [MINI_APPID, OTHER_MINI_APPID, WEB_APPID] * 2

    def login(index: int) -> str:
        account, _ = resolve_wechat_identity(
            apps[index], f"openid-{apps[index]}", "unionid-shared", "miniprogram",
            Actor.system("test"),
        )
        return account.id

    results = race(app, len(apps), login)

    assert len({resolve_account(account_id).id for account_id in results}) == 1
    active = count(Account, Account.status == AccountStatus.ACTIVE)
    assert active == 1
    assert count(Identity, Identity.kind == IdentityKind.WECHAT_UNIONID) == 1
    assert count(Identity, Identity.kind == IdentityKind.WECHAT_OPENID) == 3


def test_two_accounts_binding_one_phone_at_once_end_in_one_merge(
    app: Flask, make_user: Any
) -> None:
    older = age(make_user(), 20).id
    newer = age(make_user(), 10).id

    def bind(index: int) -> tuple[str, bool]:
        account = db.session.get(Account, (older, newer)[index])
        survivor, merged = bind_verified_phone(account, PHONE, "sms", Actor.user(account.id))
        return survivor.id, merged

    results = race(app, 2, bind)

    assert sorted(merged for _, merged in results) == [False, True]
    assert count(MergeRecord) == 1
    record = db.session.scalars(select(MergeRecord)).one()
    assert (record.survivor_id, record.loser_id) == (older, newer)
    holders = db.session.scalars(
        select(Identity.account_id).where(Identity.value_is(PHONE, IdentityKind.PHONE))
    ).all()
    assert holders == [older]


def test_many_accounts_binding_one_phone_at_once_all_merge_into_the_oldest(
    app: Flask, make_user: Any
) -> None:
    accounts = [age(make_user(), 50 - day).id for day in range(4)]  # oldest first

    def bind(index: int) -> str:
        account = db.session.get(Account, accounts[index])
        return bind_verified_phone(account, PHONE, "sms", Actor.user(account.id))[0].id

    race(app, len(accounts), bind)

    assert count(MergeRecord) == len(accounts) - 1
    assert {resolve_account(account_id).id for account_id in accounts} == {accounts[0]}
    verified = count(Identity, Identity.value_is(PHONE, IdentityKind.PHONE),
                     Identity.verified.is_(True))
    assert verified == 1
