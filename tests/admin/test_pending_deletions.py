"""Admins see pending account deletions and can cancel one or erase it now."""

from __future__ import annotations

from typing import Any

from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.deletion import schedule_deletion
from idp.identity.models import Account, AccountStatus, AuditEvent
from tests.admin.conftest import AdminBrowser


def test_admin_lists_cancels_and_erases_pending_deletions(admin: AdminBrowser,
                                                          make_user: Any) -> None:
    keep = make_user(phone="+8613900005555")
    gone = make_user(phone="+8613900006666")
    assert "No account is waiting" in admin.get("/admin/deletions").get_data(as_text=True)
    for account in (keep, gone):
        schedule_deletion(account, Actor.user(account.id))
    page = admin.get("/admin/deletions").get_data(as_text=True)
    assert keep.id in page and gone.id in page
    response = admin.submit(f"/admin/deletions/{keep.id}/cancel")
    assert response.status_code == 302
    response = admin.submit(f"/admin/deletions/{gone.id}/erase")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, keep.id).deletion_due_at is None
    assert db.session.get(Account, gone.id).status == AccountStatus.DELETED
    erased = db.session.query(AuditEvent).filter_by(action="account.erased",
                                                   account_id=gone.id).one()
    assert erased.actor_type == "admin"
    assert admin.get(f"/admin/deletions/{keep.id}/erase").status_code == 404
