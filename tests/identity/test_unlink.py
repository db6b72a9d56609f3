"""unlink_identity: allowed while another way to log in remains; refused for the last one."""

from __future__ import annotations

from typing import Any

import pytest

from idp.extensions import db
from idp.identity.accounts import identities_of, link_identity
from idp.identity.audit import Actor
from idp.identity.links import unlink_identity
from idp.identity.models import AuditEvent, IdentityKind
from idp.identity.rules import UnlinkRefused
from tests.identity.conftest import audit_actions

ADMIN = Actor.admin("admin-1")


def identity(account: Any, kind: str) -> Any:
    return identities_of(account, kind)[0]


def kinds(account: Any) -> list[str]:
    return sorted(i.kind for i in identities_of(account))


def refused_code(target: Any) -> str:
    with pytest.raises(UnlinkRefused) as refused:
        unlink_identity(target, ADMIN)
    return refused.value.code


def test_the_only_wechat_login_cannot_be_unlinked(wechat_user: Any) -> None:
    account = wechat_user("openid-1")
    assert refused_code(identity(account, IdentityKind.WECHAT_OPENID)) == "last_way_to_log_in"
    assert kinds(account) == [IdentityKind.WECHAT_OPENID]
    assert "identity.unlink_refused" in audit_actions(account.id)


def test_the_password_may_go_while_the_verified_phone_signs_in_by_sms(make_user: Any) -> None:
    account = make_user()  # password + verified phone: SMS-code sign-in still works
    unlink_identity(identity(account, IdentityKind.PASSWORD), ADMIN)
    assert kinds(account) == [IdentityKind.PHONE]
    assert refused_code(identity(account, IdentityKind.PHONE)) == "last_way_to_log_in"


def test_the_only_verified_phone_cannot_be_unlinked(wechat_user: Any) -> None:
    account = wechat_user("openid-phone")
    link_identity(account, IdentityKind.PHONE, "+8613800138041", ADMIN, verified=True, proof="sms")
    db.session.commit()
    unlink_identity(identity(account, IdentityKind.WECHAT_OPENID), ADMIN)
    assert refused_code(identity(account, IdentityKind.PHONE)) == "last_way_to_log_in"


def test_the_phone_that_names_a_password_account_cannot_be_unlinked(make_user: Any) -> None:
    account = make_user()  # password + verified phone, no email
    assert refused_code(identity(account, IdentityKind.PHONE)) == "last_way_to_log_in"


def test_the_phone_may_go_when_a_verified_email_still_names_the_account(make_user: Any) -> None:
    account = make_user()
    link_identity(account, IdentityKind.EMAIL, "a@example.com", ADMIN, verified=True, proof="x")
    db.session.commit()
    unlink_identity(identity(account, IdentityKind.PHONE), ADMIN)
    assert kinds(account) == [IdentityKind.EMAIL, IdentityKind.PASSWORD]


def test_one_of_two_ways_may_be_unlinked_then_not_the_other(
    make_user: Any, wechat_user: Any
) -> None:
    account = wechat_user("openid-2", "unionid-2")
    unlink_identity(identity(account, IdentityKind.WECHAT_UNIONID), ADMIN)
    assert kinds(account) == [IdentityKind.WECHAT_OPENID]
    assert refused_code(identity(account, IdentityKind.WECHAT_OPENID)) == "last_way_to_log_in"


def test_an_unverified_email_may_always_go(make_user: Any) -> None:
    account = make_user(email="typed@example.com")
    unlink_identity(identity(account, IdentityKind.EMAIL), Actor.user(account.id))
    assert IdentityKind.EMAIL not in kinds(account)


def test_an_unlink_is_audited_without_credentials(make_user: Any, wechat_user: Any) -> None:
    account = wechat_user("openid-3")
    link_identity(account, IdentityKind.PHONE, "+8613800138040", ADMIN, verified=True, proof="sms")
    db.session.commit()
    unlink_identity(identity(account, IdentityKind.PHONE), ADMIN)
    event = db.session.query(AuditEvent).filter_by(action="identity.unlink").one()
    assert (event.actor_type, event.account_id) == ("admin", account.id)
    assert event.details["value"] == "+8613800138040"
