"""The dashboard counts what real logins, sign-ups, merges and token requests left behind."""

from __future__ import annotations

import re
from typing import Any

from idp.admin.dashboard import build_dashboard
from idp.extensions import db
from idp.identity.accounts import link_identity
from idp.identity.audit import Actor
from idp.identity.merge import merge_accounts
from idp.identity.models import IdentityKind
from idp.identity.rules import MergeRule, Proof
from idp.usage.counters import on_wechat_call
from idp.usage.rollups import count_cross_channel, refresh_cross_channel
from tests.admin.conftest import WEB_APPID, AdminBrowser, text_of
from tests.conftest import login


def test_logins_and_new_accounts_by_channel(admin: AdminBrowser, make_user: Any, app: Any,
                                            mini_user: Any) -> None:
    make_user(phone="+8613800138000")
    mini_user("o-dash")
    browser = app.test_client()
    login(browser, "+8613800138000")
    login(browser, "+8613800138000")
    board = build_dashboard()
    assert board.logins["website_password"][-1] >= 3  # two here, one of the admin
    assert board.new_accounts["miniprogram"][-1] == 1
    html = admin.get("/admin/").get_data(as_text=True)
    assert html.count('<svg class="chart"') == 5 and "style=" not in html
    assert "Website, password" in html


def test_merges_per_day(admin: AdminBrowser, make_user: Any, mini_user: Any) -> None:
    alice = make_user(phone="+8613800138000")
    mini = mini_user("o-merge")
    merge_accounts(alice, mini, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("t"),
                   actor=Actor.admin(admin.account.id))
    assert build_dashboard().merges == {"admin_decision": [0] * 13 + [1]}


def test_cross_channel_share(make_user: Any, mini_user: Any, wechat_apps: None) -> None:
    website_only = make_user(phone="+8613800138000")
    make_user(phone="+8613800138001")
    both = mini_user("o-both")
    link_identity(both, IdentityKind.PHONE, "+8613800138009", Actor.user(both.id),
                  verified=True, proof="sms")  # a phone verified by SMS code: the website
    qr_and_mini = mini_user("o-qr")
    link_identity(qr_and_mini, IdentityKind.WECHAT_OPENID, "o-web", Actor.user(qr_and_mini.id),
                  namespace=WEB_APPID, verified=True, proof="wechat_login")
    mini_user("o-mini-only")
    db.session.commit()
    figures = count_cross_channel()
    assert (figures.both, figures.website, figures.miniprogram) == (2, 4, 3)
    assert figures.active == 5 and website_only.id
    assert abs(figures.share - 0.4) < 1e-9


def test_token_issuance_by_grant_and_wechat_error_rate(
    admin: AdminBrowser, make_client: Any, app: Any
) -> None:
    client, secret = make_client(grant_types=["client_credentials"], scope="openid")
    rp = app.test_client()
    for _ in range(2):
        response = rp.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(client.client_id, secret))
        assert response.status_code == 200
    rp.post("/oauth/token", data={"grant_type": "client_credentials"},
            auth=(client.client_id, "wrong"))
    with app.test_request_context("/"):
        on_wechat_call("/sns/jscode2session", 0, 0.1)
        on_wechat_call("/sns/jscode2session", 40029, 0.1)
        on_wechat_call("/sns/jscode2session", None, 0.1)
        on_wechat_call("/cgi-bin/stable_token", 0, 0.1)
        app.process_response(app.response_class())
    board = build_dashboard()
    assert board.tokens == {"client_credentials": [0] * 13 + [2]}
    assert board.wechat_error_rate[-1] == 0.5
    html = text_of(admin.get("/admin/"))
    assert re.search(r"Client credentials", html)


def test_the_cross_channel_figure_is_the_workers_rollup(
    make_user: Any, mini_user: Any, wechat_apps: None
) -> None:
    """Distinct counts over millions of identities take seconds: the dashboard reads the
    figure `idp worker` stored (computed at once when there is none yet)."""
    both = mini_user("o-roll")
    link_identity(both, IdentityKind.PHONE, "+8613800138009", Actor.user(both.id),
                  verified=True, proof="sms")
    db.session.commit()
    assert build_dashboard().cross_channel.both == 1
    second = mini_user("o-roll-2")
    link_identity(second, IdentityKind.PHONE, "+8613800138008", Actor.user(second.id),
                  verified=True, proof="sms")
    db.session.commit()
    assert build_dashboard().cross_channel.both == 1  # the stored figure
    assert refresh_cross_channel().both == 2
    board = build_dashboard()
    assert board.cross_channel.both == 2 and board.cross_channel_at is not None


def test_completed_days_come_from_the_daily_rollup(make_user: Any) -> None:
    """Past days are counted once into the rollup; only today is counted live."""
    from datetime import timedelta

    from idp.accounts.models import LoginEvent
    from idp.models_base import utcnow
    from idp.usage.rollups import refresh_daily

    user = make_user(phone="+8613800138000")
    three_days_ago = utcnow() - timedelta(days=3)
    db.session.add(LoginEvent(account_id=user.id, channel="miniprogram",
                              created_at=three_days_ago))
    db.session.commit()
    assert build_dashboard().logins["miniprogram"][-4] == 1  # rollup made on first view
    db.session.add(LoginEvent(account_id=user.id, channel="miniprogram",
                              created_at=three_days_ago))
    db.session.add(LoginEvent(account_id=user.id, channel="miniprogram", created_at=utcnow()))
    db.session.commit()
    board = build_dashboard()
    assert board.logins["miniprogram"][-4:] == [1, 0, 0, 1]  # past: stored; today: live
    assert refresh_daily() >= 1
    assert build_dashboard().logins["miniprogram"][-4:] == [2, 0, 0, 1]


def _tick_labels(svg: str) -> list[str]:
    """The y-axis labels: the texts anchored at the end (the day labels are centred)."""
    return re.findall(r'<text[^>]*text-anchor="end"[^>]*>([^<]*)</text>', svg)


def test_count_axes_read_whole_numbers() -> None:
    from datetime import date, timedelta

    from idp.admin.charts import stacked_bars

    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(14)]
    for peak in (0, 1, 3, 4, 5, 7, 9, 13, 21, 25, 99, 230, 1001):
        svg = stacked_bars(days, {"website_password": [0] * 13 + [peak]}, str, "t")
        ticks = _tick_labels(svg)
        assert len(ticks) == 3 and all(tick.isdigit() for tick in ticks), (peak, ticks)
        assert int(ticks[-1]) >= peak


def test_a_channel_has_one_colour_in_every_chart() -> None:
    from datetime import date

    from idp.admin.charts import stacked_bars

    day = [date(2026, 11, 1)]
    fills = {}
    for series in ({"website_password": [1], "miniprogram": [1]},
                   {"miniprogram": [1], "website_wechat": [1], "website_password": [1]}):
        svg = str(stacked_bars(day, series, str, "t"))
        for fill, name in re.findall(r'fill="(#[0-9a-f]{6})"><title>[^·]*· (\w+):', svg):
            fills.setdefault(name, set()).add(fill)
    assert set(fills) == {"website_password", "miniprogram", "website_wechat"}
    assert all(len(colours) == 1 for colours in fills.values()), fills
    assert len({next(iter(c)) for c in fills.values()}) == 3  # and different channels differ


def test_figures_buttons_name_their_chart(admin: AdminBrowser) -> None:
    html = admin.get("/admin/").get_data(as_text=True)
    summaries = re.findall(r'<details class="figures"><summary>(.*?)</summary>', html, re.S)
    names = [re.sub(r"<[^>]+>", "", summary).strip() for summary in summaries]
    assert len(names) == 5 and len(set(names)) == 5, names
    assert "Figures: Logins per day, by channel" in names


def test_admin_pages_load_no_blocking_script(admin: AdminBrowser) -> None:
    """A slow phone draws the page before any script arrives (issue 19: no blocking script)."""
    html = admin.get("/admin/").get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(re.search(r"\b(defer|async)\b", s) and "src=" in s for s in scripts)




def _delivery(client_id: str, status: str, attempts: int, days_ago: int) -> None:
    from datetime import timedelta

    from idp.events.models import EventDelivery
    from idp.models_base import utcnow

    db.session.add(EventDelivery(client_id=client_id, event_type="account-merged", payload="{}",
                                 status=status, attempts=attempts,
                                 created_at=utcnow() - timedelta(days=days_ago)))


def test_event_delivery_per_day_per_sink_by_outcome(admin: AdminBrowser) -> None:
    from idp.usage.rollups import refresh_daily

    _delivery("shop", "delivered", 1, 2)
    _delivery("shop", "delivered", 1, 2)
    _delivery("shop", "delivered", 3, 2)
    _delivery("shop", "dead", 8, 1)
    _delivery("crm", "delivered", 1, 0)
    db.session.commit()
    board = build_dashboard()
    assert board.deliveries["shop"]["first_try"][-3:] == [2, 0, 0]
    assert board.deliveries["shop"]["retried"][-3:] == [1, 0, 0]
    assert board.deliveries["shop"]["dead"][-3:] == [0, 1, 0]
    assert board.deliveries["crm"]["first_try"][-1] == 1  # today, live
    _delivery("shop", "dead", 8, 2)  # a late count: the worker's next refresh takes it in
    db.session.commit()
    refresh_daily()
    assert build_dashboard().deliveries["shop"]["dead"][-3:] == [1, 1, 0]
    html = admin.get("/admin/").get_data(as_text=True)
    assert "Event delivery per day: shop" in html and "Delivered after retries" in html


def test_cross_channel_conversion_per_week(make_user: Any, mini_user: Any,
                                           wechat_apps: None) -> None:
    from datetime import timedelta

    from idp.identity.accounts import link_identity
    from idp.identity.models import IdentityKind
    from idp.models_base import utcnow
    from idp.usage.conversion import week_of
    from tests.admin.conftest import MINI_APPID

    two_weeks_ago = utcnow() - timedelta(weeks=2)
    web_users = [make_user() for _ in range(3)]
    for account in web_users:
        account.created_via, account.created_at = "website", two_weeks_ago
    link_identity(web_users[0], IdentityKind.WECHAT_OPENID, "o-conv", Actor.system("test"),
                  namespace=MINI_APPID, verified=True, proof="wechat_login")
    minis = [mini_user(f"o-mini-{n}") for n in range(2)]
    link_identity(minis[0], IdentityKind.PHONE, "+8613700000001", Actor.system("test"),
                  verified=True, proof="sms")
    db.session.commit()

    weeks = {w.week: w for w in build_dashboard().conversion}
    cohort = weeks[week_of(two_weeks_ago.date())]
    assert (cohort.website, cohort.website_converted) == (3, 1)
    this_week = weeks[week_of(utcnow().date())]
    assert (this_week.miniprogram, this_week.miniprogram_converted) == (2, 1)


def test_dashboard_shows_the_latest_run_trend_and_links(admin: AdminBrowser,
                                                        mini_user: Any) -> None:
    from idp.maintenance.reconciliation import run_reconciliation

    mini_user("o-union", unionid="u-1")
    run_reconciliation(trigger="cli")
    lone = mini_user("o-lone")
    latest = run_reconciliation(trigger="worker")
    board = build_dashboard()
    assert board.reconciliation is not None
    assert board.reconciliation.latest.id == latest.id
    assert board.reconciliation.trend["unionid_one_side"][-2:] == [0, 1]
    html = admin.get("/admin/").get_data(as_text=True)
    assert 'id="chart-reconciliation"' in html
    assert f'href="/admin/accounts/{lone.id}"' in html


def test_delivery_days_purged_by_retention_keep_their_count(app: Any) -> None:
    """Retention deletes delivered events after IDP_RETENTION_DELIVERY_DAYS (7); the chart's
    older days keep the count the rollup made while the rows were there."""
    from sqlalchemy import delete

    from idp.events.models import EventDelivery
    from idp.usage.rollups import refresh_daily

    _delivery("shop", "delivered", 1, 10)
    db.session.commit()
    assert build_dashboard(days=14).deliveries["shop"]["first_try"][-11] == 1
    db.session.execute(delete(EventDelivery))  # what the retention purge does
    db.session.commit()
    refresh_daily()
    assert build_dashboard(days=14).deliveries["shop"]["first_try"][-11] == 1
