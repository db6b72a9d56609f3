"""Merge: preview, confirm, refusals, history, undo; suggested merges: review and dismiss."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from idp.extensions import db
from idp.identity.accounts import identities_of, link_identity, set_claim
from idp.identity.audit import Actor
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind, MergeRecord
from tests.admin.conftest import AdminBrowser, age, audit_of, text_of


def _pair(make_user: Any, mini_user: Any) -> tuple[Account, Account]:
    website = age(make_user(phone="+8613800138000", name="Alice"), days=30)
    mini = mini_user("o-alice", unionid="u-alice", name="阿丽")
    set_claim(mini, "name", "Alice from WeChat", "wechat")
    db.session.commit()
    return website, mini


def test_preview_shows_both_sides_and_what_happens(
    admin: AdminBrowser, make_user: Any, mini_user: Any
) -> None:
    website, mini = _pair(make_user, mini_user)
    html = text_of(admin.get("/admin/merge", query_string={"a": mini.id, "b": website.id}))
    survivor = re.search(r'id="survivor-id">([^<]+)<', html)
    assert survivor and survivor.group(1) == website.id  # the older one, whatever the order
    moving = html.split('id="moving-identities"')[1].split("</ul>")[0]
    assert "o-alice" in moving and "u-alice" in moving
    claims = html.split('id="claims"')[1].split("</table>")[0]
    assert "source website ranks higher" in claims  # website name beats the WeChat one
    assert "阿丽" in claims and "the only value" in claims
    assert "Keeps its sub." in html and "becomes an alias" in html
    assert "stops working" in html  # the loser's tokens die
    swapped = text_of(admin.get("/admin/merge", query_string={
        "a": mini.id, "b": website.id, "survivor": mini.id}))
    assert re.search(r'id="survivor-id">([^<]+)<', swapped).group(1) == mini.id  # type: ignore[union-attr]
    assert "You picked it" in swapped


def test_merge_then_undo(admin: AdminBrowser, make_user: Any, mini_user: Any) -> None:
    website, mini = _pair(make_user, mini_user)
    preview = f"/admin/merge?a={website.id}&b={mini.id}"
    response = admin.submit(preview, {"survivor_id": website.id, "loser_id": mini.id,
                                      "reason": "same person, checked by phone call"},
                            action="/admin/merge")
    assert response.headers["Location"] == f"/admin/accounts/{website.id}"
    db.session.expire_all()
    assert db.session.get(Account, mini.id).status == AccountStatus.MERGED
    assert {i.value for i in identities_of(website)} >= {"o-alice", "u-alice"}
    record = db.session.scalars(sa.select(MergeRecord)).one()
    assert record.rule == "admin_decision" and record.actor == f"admin:{admin.account.id}"
    merge_events = audit_of("account.merge")
    assert merge_events[0].actor_type == "admin"
    assert "same person" in str(merge_events[0].details)

    history = text_of(admin.get("/admin/merges"))
    assert f"/admin/merges/{record.id}/undo" in history
    confirm = text_of(admin.get(f"/admin/merges/{record.id}/undo"))
    assert "comes back with its own sub" in confirm and mini.id in confirm
    response = admin.submit(f"/admin/merges/{record.id}/undo")
    assert response.headers["Location"] == f"/admin/accounts/{mini.id}"
    db.session.expire_all()
    assert db.session.get(Account, mini.id).status == AccountStatus.ACTIVE
    assert {i.value for i in identities_of(mini)} == {"o-alice", "u-alice"}
    assert audit_of("account.unmerge")[0].actor_id == admin.account.id
    # Undoing twice is refused by the engine, and says so.
    again = admin.browser.post(f"/admin/merges/{record.id}/undo", data={
        "csrf_token": _token(admin, f"/admin/merges/{record.id}/undo")})
    assert "Refused" in text_of(admin.get(again.headers["Location"]))


def _token(admin: AdminBrowser, url: str) -> str:
    from tests.conftest import csrf_token

    return csrf_token(admin.get(url).get_data(as_text=True))


def test_merge_needs_a_reason(admin: AdminBrowser, make_user: Any, mini_user: Any) -> None:
    website, mini = _pair(make_user, mini_user)
    response = admin.submit(f"/admin/merge?a={website.id}&b={mini.id}",
                            {"survivor_id": website.id, "loser_id": mini.id, "reason": ""},
                            action="/admin/merge")
    assert response.status_code == 302 and "/admin/merge?" in response.headers["Location"]
    assert db.session.scalars(sa.select(MergeRecord)).all() == []


def test_the_engine_refusal_is_shown(admin: AdminBrowser, make_user: Any) -> None:
    alice = make_user(phone="+8613800138000")
    bob = make_user(phone="+8613800138001")
    html = text_of(admin.get("/admin/merge", query_string={"a": alice.id, "b": alice.id}))
    assert "refuses this merge" in html and 'id="merge-form"' not in html
    # Posted anyway (a stale page): refused by the engine and audited, nothing merged.
    admin.submit(f"/admin/merge?a={alice.id}&b={bob.id}",
                 {"survivor_id": alice.id, "loser_id": alice.id, "reason": "x"},
                 action="/admin/merge")
    assert db.session.scalars(sa.select(MergeRecord)).all() == []
    assert audit_of("account.merge_refused")[0].reason == "same_account"


def test_merge_pick_searches_for_the_other_account(
    admin: AdminBrowser, make_user: Any
) -> None:
    alice = make_user(phone="+8613800138000")
    bob = make_user(phone="+8613800138001", name="Bob")
    html = text_of(admin.get("/admin/merge", query_string={"a": alice.id, "q": "bob"}))
    assert f"b={bob.id}" in html


def test_suggested_merges_review_and_dismiss(
    admin: AdminBrowser, make_user: Any, mini_user: Any
) -> None:
    alice = make_user(phone="+8613800138000")
    mini = mini_user("o-typed")
    link_identity(mini, IdentityKind.PHONE, "+8613800138000", Actor.user(mini.id), verified=False)
    db.session.commit()
    html = text_of(admin.get("/admin/suggestions"))
    assert "Shared phone 138****8000" in html  # masked (issue 27 item 3)
    assert f"/admin/merge?a={alice.id}&amp;b={mini.id}" in admin.get(
        "/admin/suggestions").get_data(as_text=True)
    key = re.search(r'name="key" value="([^"]+)"', admin.get("/admin/suggestions")
                    .get_data(as_text=True))
    assert key
    admin.submit("/admin/suggestions", {"key": key.group(1).replace("&#43;", "+")},
                 action="/admin/suggestions/dismiss")
    assert "Shared phone" not in text_of(admin.get("/admin/suggestions"))
    assert {e.account_id for e in audit_of("admin.suggestion_dismiss")} == {alice.id, mini.id}
    assert db.session.scalars(sa.select(Identity).where(Identity.account_id == mini.id)).all()


def test_suggestions_come_from_the_stored_run_a_page_at_a_time(
    admin: AdminBrowser, make_user: Any, app: Any
) -> None:
    from idp.admin.suggestions import suggestions

    holders = [make_user(phone=f"+861380013810{n}") for n in range(3)]
    typists = [make_user(phone=f"+861380013820{n}") for n in range(3)]
    for holder, typist in zip(holders, typists, strict=True):
        phone = next(i.value for i in holder.identities if i.kind == IdentityKind.PHONE)
        link_identity(typist, IdentityKind.PHONE, phone, Actor.user(typist.id), verified=False)
    db.session.commit()

    first = suggestions(per_page=2)
    assert len(first.suggestions) == 2 and first.next_after
    second = suggestions(after=first.next_after, per_page=2)
    assert len(second.suggestions) == 1 and second.next_after is None
    html = text_of(admin.get("/admin/suggestions"))
    assert "From the reconciliation run of" in html and html.count("Shared phone") == 3

    # Disabled since the run: skipped, without waiting for the next run.
    typists[0].status = AccountStatus.DISABLED
    db.session.commit()
    assert len(suggestions(per_page=10).suggestions) == 2
    # "Run now" makes a new run, which sees what changed.
    runs_before = first.run.id if first.run else 0
    admin.submit("/admin/suggestions", {}, action="/admin/suggestions/run")
    assert suggestions().run.id > runs_before


def test_new_reconciliation_findings_link_to_account_and_events(
        admin: AdminBrowser, mini_user: Any) -> None:
    from datetime import timedelta

    from idp.events.models import DeliveryStatus, EventDelivery
    from idp.models_base import utcnow

    mini_user("openid-union", unionid="union-x")
    lone = mini_user("openid-lone")
    dead = EventDelivery(client_id="rp", event_type="account-merged", payload="{}",
                         status=DeliveryStatus.DEAD, attempts=8,
                         next_attempt_at=utcnow() - timedelta(days=2))
    db.session.add(dead)
    db.session.commit()
    html = admin.get("/admin/suggestions").get_data(as_text=True)
    assert f'href="/admin/accounts/{lone.id}"' in html
    assert f'href="/admin/events#delivery-{dead.id}"' in html
    events = admin.get("/admin/events").get_data(as_text=True)
    assert f'id="delivery-{dead.id}"' in events
