"""`idp identity report`: what the rules did not merge, as suggestions for an admin."""

from __future__ import annotations

import json
from typing import Any

from idp.extensions import db
from idp.identity.accounts import identities_of, link_identity
from idp.identity.audit import Actor
from idp.identity.models import AccountStatus, IdentityKind
from idp.maintenance.reconciliation import build_report
from tests.identity.conftest import age

ACTOR = Actor.system("test")
PHONE = "+8613800138070"


def test_accounts_sharing_an_unverified_phone_are_suggested(
    make_user: Any, wechat_user: Any
) -> None:
    holder = age(make_user(phone=PHONE), 10)
    typed = wechat_user("openid-1")
    link_identity(typed, IdentityKind.PHONE, PHONE, ACTOR, verified=False)
    typed_too = wechat_user("openid-2")
    link_identity(typed_too, IdentityKind.PHONE, "+8613800138071", ACTOR, verified=False)
    db.session.commit()

    report = build_report()

    assert [(s.value, s.account_ids, s.verified_on) for s in report.shared_unverified_phones] == [
        (PHONE, [holder.id, typed.id], [holder.id])
    ]


def test_accounts_sharing_a_verified_email_are_suggested_not_merged(
    make_user: Any, wechat_user: Any
) -> None:
    verified = age(make_user(), 10)
    link_identity(verified, IdentityKind.EMAIL, "a@example.com", ACTOR, verified=True,
                  proof="email")
    other = wechat_user("openid-3")
    link_identity(other, IdentityKind.EMAIL, "a@example.com", ACTOR, verified=False)
    # Two unverified copies prove nothing and suggest nothing.
    make_user(email="b@example.com")
    make_user(email="b@example.com")
    db.session.commit()

    report = build_report()

    assert [(s.value, s.account_ids, s.verified_on) for s in report.shared_verified_emails] == [
        ("a@example.com", [verified.id, other.id], [verified.id])
    ]
    assert other.status == AccountStatus.ACTIVE


def test_accounts_with_no_way_left_to_log_in_are_listed(make_user: Any, wechat_user: Any) -> None:
    fine = make_user()
    stranded = make_user()
    for identity in identities_of(stranded, IdentityKind.PHONE):
        db.session.delete(identity)  # as if an old bug or a manual edit had removed it
    db.session.commit()

    report = build_report()

    assert report.no_way_to_log_in == [stranded.id]
    assert fine.id not in report.no_way_to_log_in


def test_merged_and_disabled_accounts_are_left_out(make_user: Any) -> None:
    disabled = make_user(email="c@example.com")
    make_user(email="c@example.com")
    disabled.status = AccountStatus.DISABLED
    for identity in identities_of(disabled, IdentityKind.PASSWORD):
        db.session.delete(identity)
    db.session.commit()
    assert build_report().is_empty


def test_the_command_prints_json_and_a_table(app: Any, make_user: Any, wechat_user: Any) -> None:
    holder = make_user(phone=PHONE)
    typed = wechat_user("openid-4")
    link_identity(typed, IdentityKind.PHONE, PHONE, ACTOR, verified=False)
    db.session.commit()
    runner = app.test_cli_runner()

    as_json = runner.invoke(args=["identity", "report", "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["shared_unverified_phones"][0]["account_ids"] == [holder.id, typed.id]
    assert data["shared_verified_emails"] == [] and data["no_way_to_log_in"] == []

    table = runner.invoke(args=["identity", "report"])
    assert table.exit_code == 0
    assert PHONE in table.output and f"{typed.id}  unverified" in table.output


def test_a_run_is_stored_with_its_findings_and_read_back_as_json(
    make_user: Any, wechat_user: Any
) -> None:
    import io

    from idp.maintenance.reconciliation import run_reconciliation, stored_findings, write_json

    holder = age(make_user(phone=PHONE), 10)
    typed = wechat_user("openid-5")
    link_identity(typed, IdentityKind.PHONE, PHONE, ACTOR, verified=False)
    stranded = make_user()
    for identity in identities_of(stranded, IdentityKind.PHONE):
        db.session.delete(identity)
    db.session.commit()

    run = run_reconciliation(trigger="cli")

    assert run.finished_at and run.counts == {
        "shared_unverified_phone": 1, "shared_verified_email": 0, "no_way_to_log_in": 1,
        "unionid_one_side": 0, "dead_delivery": 0}
    stored = list(stored_findings(run.id))
    assert [(f.reason, f.account_ids) for f in stored] == [
        ("shared_unverified_phone", [holder.id, typed.id]), ("no_way_to_log_in", [stranded.id])]
    out = io.StringIO()
    write_json(run, out)
    document = json.loads(out.getvalue())
    assert document["run"]["id"] == run.id and document["no_way_to_log_in"] == [stranded.id]
    assert document["shared_unverified_phones"][0]["verified_on"] == [holder.id]


def test_the_stored_run_shows_each_shared_phone_looked_up_once_for_the_page(
    make_user: Any, wechat_user: Any
) -> None:
    """Findings hold blind indexes (issue 28); the JSON shows the phones behind them, read in
    one statement for a page of findings, not one per finding (1,000 at 1M accounts)."""
    import io

    import sqlalchemy as sa

    from idp.maintenance.reconciliation import run_reconciliation, write_json

    phones = [f"+86138001381{number:02d}" for number in range(3)]
    for number, phone in enumerate(phones):
        make_user(phone=phone)
        link_identity(wechat_user(f"openid-v{number}"), IdentityKind.PHONE, phone, ACTOR,
                      verified=False)
    db.session.commit()
    run = run_reconciliation(trigger="cli")
    statements: list[str] = []
    note = lambda *args: statements.append(args[2])  # noqa: E731 — (conn, cursor, statement …)
    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        out = io.StringIO()
        write_json(run, out)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)

    shown = [item["value"] for item in json.loads(out.getvalue())["shared_unverified_phones"]]
    assert sorted(shown) == phones
    assert len([s for s in statements if "FROM identity" in s]) == 1


def test_the_report_streams_rows_rather_than_loading_identities(
    make_user: Any, wechat_user: Any
) -> None:
    """No ORM object per identity: the report reads tuples, a bounded batch at a time."""
    from sqlalchemy import event

    from idp.maintenance.reconciliation import run_reconciliation

    for number in range(5):
        account = wechat_user(f"openid-s{number}")
        link_identity(account, IdentityKind.PHONE, PHONE, ACTOR, verified=False)
    db.session.commit()
    loaded: list[Any] = []
    listener = lambda _session, instance: loaded.append(instance)  # noqa: E731
    event.listen(db.session.registry(), "loaded_as_persistent", listener)
    try:
        run = run_reconciliation(trigger="cli")
    finally:
        event.remove(db.session.registry(), "loaded_as_persistent", listener)
    assert run.counts["shared_unverified_phone"] == 1
    assert not [row for row in loaded if type(row).__name__ == "Identity"]


def test_wechat_accounts_with_a_unionid_on_one_side_only_are_listed(
    make_user: Any, wechat_user: Any
) -> None:
    from tests.identity.conftest import WEB_APPID

    lone = wechat_user("openid-lone")  # no unionid: nothing to list while none are in use
    assert build_report().unionid_one_side == []
    wechat_user("openid-joined", unionid="union-1")
    website_only = wechat_user("openid-web", appid=WEB_APPID, channel="website_wechat")
    make_user()  # a password user holds no openid: not a WeChat account

    report = build_report()

    assert report.unionid_one_side == [lone.id, website_only.id]


def test_event_deliveries_dead_for_more_than_a_day_are_listed(app: Any) -> None:
    from datetime import timedelta

    from idp.events.models import DeliveryStatus, EventDelivery
    from idp.models_base import utcnow

    def delivery(status: str, hours_ago: float) -> EventDelivery:
        row = EventDelivery(client_id="rp", event_type="account-merged", payload="{}",
                            status=status, attempts=8,
                            next_attempt_at=utcnow() - timedelta(hours=hours_ago))
        db.session.add(row)
        db.session.commit()
        return row

    old_dead = delivery(DeliveryStatus.DEAD, 30)
    delivery(DeliveryStatus.DEAD, 2)  # dead since two hours: not yet
    delivery(DeliveryStatus.PENDING, 30)
    delivery(DeliveryStatus.DELIVERED, 30)

    assert build_report().dead_deliveries == [old_dead.id]
