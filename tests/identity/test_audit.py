"""Every engine action lands in the audit log: who, why, which proof, what changed, request id."""

from __future__ import annotations

from typing import Any

from flask import g
from sqlalchemy import select

from idp.extensions import db
from idp.identity.accounts import identities_of
from idp.identity.audit import Actor
from idp.identity.links import bind_verified_phone, resolve_wechat_identity, unlink_identity
from idp.identity.merge import undo_merge
from idp.identity.models import AuditEvent, IdentityKind, MergeRecord
from tests.identity.conftest import MINI_APPID, age

PHONE = "+8613800138080"


def events() -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_create_link_merge_undo_and_unlink_are_audited_with_the_request_id(
    app: Any, make_user: Any
) -> None:
    web = age(make_user(phone=PHONE), 30)
    already = len(events())
    with app.test_request_context("/wechat/phone"):
        g.request_id = "req-0123456789"
        mini, created = resolve_wechat_identity(
            MINI_APPID, "openid-1", "unionid-1", "miniprogram", Actor.system("token-exchange")
        )
        bind_verified_phone(mini, PHONE, "wechat_phone", Actor.user(mini.id))
        record = db.session.scalars(select(MergeRecord)).one()
        undo_merge(record, Actor.admin("admin-1"))
        unlink_identity(identities_of(mini, IdentityKind.WECHAT_UNIONID)[0], Actor.user(mini.id))

    recorded = events()[already:]
    assert [event.action for event in recorded] == [
        "account.create",
        "identity.link",  # unionid
        "identity.link",  # openid
        "account.merge",
        "account.merged_away",
        "account.unmerge",
        "account.restored",
        "identity.unlink",
    ]
    assert {event.request_id for event in recorded} == {"req-0123456789"}
    merge = recorded[3]
    assert (merge.actor_type, merge.actor_id, merge.reason) == (
        "rule", "same_verified_phone", "same_verified_phone"
    )
    assert merge.details["triggered_by"] == f"user:{mini.id}"
    assert merge.details["proof"] == {
        "kind": "phone", "value": PHONE, "method": "wechat_phone", "verified": True
    }
    assert merge.details["survivor"] == web.id and merge.details["merged"] == mini.id
    assert merge.details["moved_identities"] == 2
    undo = recorded[5]
    assert (undo.actor_type, undo.actor_id) == ("admin", "admin-1")
    assert recorded[7].details["kind"] == IdentityKind.WECHAT_UNIONID


def test_linking_a_served_identity_changes_updated_at(wechat_user: Any) -> None:
    from datetime import timedelta

    from idp.models_base import utcnow

    account = wechat_user("openid-2")
    account.profile_updated_at = utcnow() - timedelta(days=1)
    db.session.commit()
    before = account.profile_updated_at
    bind_verified_phone(account, PHONE, "sms", Actor.user(account.id))
    assert account.profile_updated_at > before
