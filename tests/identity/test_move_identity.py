"""Moving an identity to another account ("link from another account", an admin's decision) is
one engine transaction (`links.move_identity`): it leaves its account and joins the other, or
nothing changes — there is no compensating step that could itself fail."""

from __future__ import annotations

from typing import Any

import pytest

from idp.extensions import db
from idp.identity import links
from idp.identity.accounts import create_account, identities_of, link_identity
from idp.identity.audit import Actor
from idp.identity.links import MoveRefused, move_identity
from idp.identity.models import Account, AccountStatus, IdentityKind
from idp.identity.rules import UnlinkRefused
from tests.identity.conftest import dump_database

ADMIN = Actor.admin("admin-1")


class Injected(Exception):
    pass


def _wechat_account(openid: str, unionid: str) -> Account:
    actor = Actor.system("test")
    account = create_account(actor, "miniprogram")
    link_identity(account, IdentityKind.WECHAT_OPENID, openid, actor, namespace="wxmini",
                  verified=True, proof="wechat_login")
    link_identity(account, IdentityKind.WECHAT_UNIONID, unionid, actor, verified=True,
                  proof="wechat_login")
    db.session.commit()
    return account


def test_an_identity_moves_with_the_admin_as_its_proof(app: Any, make_user: Any) -> None:
    alice = make_user(phone="+8613800138000")
    second = _wechat_account("o-second", "u-second")
    unionid = identities_of(second, IdentityKind.WECHAT_UNIONID)[0]
    moved = move_identity(unionid, alice, ADMIN)
    db.session.expire_all()
    assert moved.account_id == alice.id and moved.verified_by == "admin"
    assert identities_of(second, IdentityKind.WECHAT_UNIONID) == []


def test_a_failure_while_linking_leaves_the_identity_where_it_was(
    app: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old admin move unlinked and committed, then linked; a failure in between relinked a
    new row (another id, another pair of audit events)."""
    alice = make_user(phone="+8613800138000")
    second = _wechat_account("o-second", "u-second")
    unionid = identities_of(second, IdentityKind.WECHAT_UNIONID)[0]
    before = dump_database()

    def failing_link(*args: Any, **kwargs: Any) -> Any:
        raise Injected

    monkeypatch.setattr(links, "link_identity", failing_link)
    with pytest.raises(Injected):
        move_identity(unionid, alice, ADMIN)
    assert dump_database() == before


def test_the_last_way_to_sign_in_does_not_move(app: Any, make_user: Any) -> None:
    alice = make_user(phone="+8613800138000")
    actor = Actor.system("test")
    only = create_account(actor, "miniprogram")
    openid = link_identity(only, IdentityKind.WECHAT_OPENID, "o-only", actor, namespace="wxmini",
                           verified=True, proof="wechat_login")
    db.session.commit()
    with pytest.raises(UnlinkRefused):
        move_identity(openid, alice, ADMIN)
    db.session.expire_all()
    assert [i.account_id for i in identities_of(only)] == [only.id]


@pytest.mark.parametrize("case", ["password", "same_account", "target_not_active"])
def test_refusals_change_nothing(app: Any, make_user: Any, case: str) -> None:
    alice = make_user(phone="+8613800138000")
    second = _wechat_account("o-second", "u-second")
    identity = identities_of(second, IdentityKind.WECHAT_UNIONID)[0]
    target = alice
    if case == "password":
        identity = identities_of(alice, IdentityKind.PASSWORD)[0]
        target = second
    elif case == "same_account":
        target = second
    else:
        alice.status = AccountStatus.DISABLED
        db.session.commit()
    before = dump_database()
    with pytest.raises(MoveRefused) as refused:
        move_identity(identity, target, ADMIN)
    assert refused.value.code == case
    assert dump_database() == before
