"""Issue 27 item 2, four-eyes: a manual merge, undo or move proposed by one admin is carried out
only when a second admin with `identity` approves it; the proposer cannot approve their own;
proposals expire; the preview is the same for both."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.models import Account, IdentityKind, MergeRecord
from idp.staff.models import AdminProposal
from idp.staff.permissions import Role
from tests.admin.conftest import audit_of, enrol_totp, grant_roles, text_of
from tests.conftest import csrf_token, login


def _admin(app: Flask, make_user: Any, phone: str, *roles: Role) -> FlaskClient:
    account = make_user(phone=phone, name=f"{phone} admin")
    grant_roles(account, *roles)
    browser = app.test_client()
    login(browser, phone)
    enrol_totp(browser)
    return browser


def _post(browser: FlaskClient, page: str, action: str, data: dict[str, Any]) -> Any:
    html = browser.get(page).get_data(as_text=True)
    return browser.post(action, data={**data, "csrf_token": csrf_token(html)})


def _two_accounts(make_user: Any) -> tuple[Account, Account]:
    return make_user(phone="+8613800000301"), make_user(phone="+8613800000302")


def test_a_proposed_merge_waits_for_a_second_admin_with_identity(
    app: Flask, make_user: Any
) -> None:
    support = _admin(app, make_user, "+8613900000301", Role.SUPPORT)
    identity = _admin(app, make_user, "+8613900000302", Role.IDENTITY)
    older, newer = _two_accounts(make_user)
    preview = f"/admin/merge?a={older.id}&b={newer.id}"
    response = _post(support, preview, "/admin/merge", {
        "survivor_id": older.id, "loser_id": newer.id, "reason": "same person, called in",
    })
    assert response.status_code == 302
    proposal = db.session.scalars(db.select(AdminProposal)).one()
    db.session.expire_all()
    assert db.session.get(Account, newer.id).merged_into_id is None  # nothing happened yet

    # Both see the same preview: the proposal page renders the merge preview of the pair.
    seen_by_support = text_of(support.get(f"/admin/proposals/{proposal.id}"))
    seen_by_identity = text_of(identity.get(f"/admin/proposals/{proposal.id}"))
    for page in (seen_by_support, seen_by_identity):
        assert f'id="survivor-id">{older.id}' in page and "same person, called in" in page
    assert 'id="approve"' in seen_by_identity and 'id="approve"' not in seen_by_support

    approved = _post(identity, f"/admin/proposals/{proposal.id}",
                     f"/admin/proposals/{proposal.id}/approve", {})
    assert approved.status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, newer.id).merged_into_id == older.id
    assert db.session.get(AdminProposal, proposal.id).status == "approved"
    [merge] = audit_of("account.merge")
    assert merge.actor_id != proposal.proposed_by
    [approval] = audit_of("admin.proposal_approve")
    assert approval.details["proposed_by"] == proposal.proposed_by


def test_the_proposer_cannot_approve_their_own(app: Flask, make_user: Any) -> None:
    both = _admin(app, make_user, "+8613900000303", Role.SUPPORT, Role.IDENTITY)
    older, newer = _two_accounts(make_user)
    _post(both, f"/admin/merge?a={older.id}&b={newer.id}", "/admin/merge",
          {"survivor_id": older.id, "loser_id": newer.id, "reason": "mine"})
    proposal = db.session.scalars(db.select(AdminProposal)).one()
    response = _post(both, f"/admin/proposals/{proposal.id}",
                     f"/admin/proposals/{proposal.id}/approve", {})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, newer.id).merged_into_id is None
    assert db.session.get(AdminProposal, proposal.id).status == "pending"
    assert "another admin with the identity role" in text_of(both.get("/admin/proposals"))


def test_support_cannot_approve_and_an_expired_proposal_is_refused(
    app: Flask, make_user: Any
) -> None:
    first = _admin(app, make_user, "+8613900000304", Role.SUPPORT)
    second = _admin(app, make_user, "+8613900000305", Role.SUPPORT)
    identity = _admin(app, make_user, "+8613900000306", Role.IDENTITY)
    older, newer = _two_accounts(make_user)
    _post(first, f"/admin/merge?a={older.id}&b={newer.id}", "/admin/merge",
          {"survivor_id": older.id, "loser_id": newer.id, "reason": "r"})
    proposal = db.session.scalars(db.select(AdminProposal)).one()
    page = f"/admin/proposals/{proposal.id}"
    assert _post(second, page, f"{page}/approve", {}).status_code == 403
    proposal.expires_at = proposal.proposed_at - timedelta(seconds=1)
    db.session.commit()
    _post(identity, page, f"{page}/approve", {})
    db.session.expire_all()
    assert db.session.get(Account, newer.id).merged_into_id is None
    assert db.session.get(AdminProposal, proposal.id).status == "pending"


def test_an_undo_and_a_move_wait_too(app: Flask, make_user: Any) -> None:
    from idp.identity.audit import Actor
    from idp.identity.merge import merge_accounts
    from idp.identity.rules import MergeRule, Proof

    support = _admin(app, make_user, "+8613900000307", Role.SUPPORT)
    identity = _admin(app, make_user, "+8613900000308", Role.IDENTITY)
    older, newer = _two_accounts(make_user)
    record = merge_accounts(older, newer, rule=MergeRule.ADMIN_DECISION,
                            proof=Proof.admin("test"), actor=Actor.admin(older.id))
    _post(support, f"/admin/merges/{record.id}/undo", f"/admin/merges/{record.id}/undo",
          {"reason": "two people"})
    undo = db.session.scalars(db.select(AdminProposal)).one()
    db.session.expire_all()
    assert db.session.get(MergeRecord, record.id).undone_at is None
    _post(identity, f"/admin/proposals/{undo.id}", f"/admin/proposals/{undo.id}/approve", {})
    db.session.expire_all()
    assert db.session.get(MergeRecord, record.id).undone_at is not None

    holder = make_user(phone="+8613800000303", email="kim@example.com")
    email = next(i for i in holder.identities if i.kind == IdentityKind.EMAIL)
    email.verified = True
    db.session.commit()
    target = f"/admin/accounts/{older.id}"
    _post(support, target, f"{target}/link", {
        "identifier": "kim@example.com", "identity_id": email.id, "confirmed": "yes",
        "reason": "asked by phone",
    })
    move = db.session.scalars(db.select(AdminProposal).where(AdminProposal.action == "move")).one()
    db.session.expire_all()
    assert email.account_id == holder.id
    _post(identity, f"/admin/proposals/{move.id}", f"/admin/proposals/{move.id}/approve", {})
    db.session.expire_all()
    from idp.identity.accounts import find_identity

    assert find_identity(IdentityKind.EMAIL, "kim@example.com").account_id == older.id
