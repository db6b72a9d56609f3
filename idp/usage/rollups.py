"""Figures too costly to count per request, computed on a schedule by `idp worker`.

Per-day series (logins by channel, new accounts by channel, merges by rule): each completed day
is counted once into `usage_count` (metric `daily:<name>`), so the dashboard reads at most 13
small rows per label plus today's rows, counted live over one day of an indexed range —
whatever the number of accounts or of logins a day. The worker recounts the window's completed
days every `IDP_USAGE_ROLLUP_INTERVAL_SECONDS`; the dashboard does it once when they are missing.

Event delivery per day and sink: deliveries created that day, by outcome (`first_try`: delivered
on the first attempt, `retried`: delivered after retries, `dead`, `pending`) and by sink (the
receiving client; label `<outcome>:<client_id>`), recounted over the window on each refresh as
late retries change the outcome of earlier days.

Cross-channel conversion per week (`conversion.py`): of the accounts first seen on one side in a
week, how many now also hold an identity of the other side; counted by the worker with the
per-day series.

Cross-channel accounts: active accounts that hold a website identity — a password, a phone
verified by SMS code, or the openid of a website (QR-login) WeChat app — and also the openid of
a mini-program WeChat app. Over millions of identities these distinct counts take seconds, so
the dashboard reads the last stored figure (and computes it once when there is none yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import case, delete, distinct, func, insert, or_, select

from idp.accounts.models import LoginEvent
from idp.events.models import DeliveryStatus, EventDelivery
from idp.extensions import db
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind, MergeRecord
from idp.identity.rules import ProofMethod
from idp.models_base import utcnow
from idp.usage.models import UsageCount, UsageSnapshot
from idp.wechat.models import WeChatApp, WeChatAppKind

CROSS_CHANNEL = "cross_channel"
DAILY_ROLLUP = "daily_rollup"  # the snapshot saying through which day the rollup is counted
WINDOW_DAYS = 14
CONVERSION_WEEKS = 8
# name: (the timestamp column, the label column) of the rows counted per day.
DAILY: dict[str, Callable[[], tuple[Any, Any]]] = {
    "logins": lambda: (LoginEvent.created_at, LoginEvent.channel),
    "new_accounts": lambda: (Account.created_at, Account.created_via),
    "merges": lambda: (MergeRecord.created_at, MergeRecord.rule),
    "deliveries": lambda: (EventDelivery.created_at, delivery_outcome().concat(":").concat(
        EventDelivery.client_id)),
}


def delivery_outcome() -> Any:
    delivered = EventDelivery.status == DeliveryStatus.DELIVERED
    return case(
        (delivered & (EventDelivery.attempts <= 1), "first_try"),
        (delivered, "retried"),
        (EventDelivery.status == DeliveryStatus.DEAD, "dead"),
        else_="pending",
    )


def daily_rows(name: str, first_day: date, today: date) -> list[tuple[date, str, int]]:
    """(day, label, count) from `first_day` through `today`: completed days from the rollup
    (made now if it does not reach yesterday), today counted live."""
    snapshot = db.session.get(UsageSnapshot, DAILY_ROLLUP)
    through = date.fromisoformat(snapshot.data["through"]) if snapshot else None
    if through is None or through < today - timedelta(days=1):
        refresh_daily(today)
    metric = f"daily:{name}"
    stored = db.session.execute(
        select(UsageCount.day, UsageCount.label, UsageCount.count)
        .where(UsageCount.metric == metric, UsageCount.day >= first_day, UsageCount.day < today)
    ).all()
    rows = [(day, label, count) for day, label, count in stored]
    return rows + _count_days(name, today, today + timedelta(days=1))


def refresh_daily(today: date | None = None, days: int = WINDOW_DAYS) -> int:
    """Recounts the window's completed days into `usage_count`; returns the rows written."""
    today = today or utcnow().date()
    written = 0
    for name in DAILY:
        metric = f"daily:{name}"
        window_start = today - timedelta(days=days - 1)
        first_day = today - timedelta(days=min(days, _recount_days(name)) - 1)
        rows = _count_days(name, first_day, today)
        if window_start < first_day:  # days past recounting: counted once, when first missing
            counted = set(db.session.scalars(select(UsageCount.day).distinct().where(
                UsageCount.metric == metric, UsageCount.day >= window_start,
                UsageCount.day < first_day)))
            rows += [row for row in _count_days(name, window_start, first_day)
                     if row[0] not in counted]
        db.session.execute(delete(UsageCount).where(
            UsageCount.metric == metric, UsageCount.day >= first_day, UsageCount.day < today))
        if rows:
            db.session.execute(insert(UsageCount), [
                {"day": day, "metric": metric, "label": label[:96], "count": count}
                for day, label, count in rows])
        written += len(rows)
    written += refresh_weekly_conversion(today)
    _store_snapshot(DAILY_ROLLUP, {"through": (today - timedelta(days=1)).isoformat()})
    db.session.commit()
    return written


def _recount_days(name: str) -> int:
    """How far back a day's rows are all still there: retention purges delivered events after
    `IDP_RETENTION_DELIVERY_DAYS`, so older days keep the count made before the purge."""
    if name == "deliveries":
        return max(1, int(current_app.config.get("IDP_RETENTION_DELIVERY_DAYS") or 7) - 1)
    return WINDOW_DAYS


def refresh_weekly_conversion(today: date) -> int:
    from idp.usage.conversion import WEEKLY_METRIC, count_conversion, week_of

    first_week = week_of(today) - timedelta(weeks=CONVERSION_WEEKS - 1)
    rows = count_conversion(first_week, week_of(today) + timedelta(weeks=1))
    db.session.execute(delete(UsageCount).where(
        UsageCount.metric == WEEKLY_METRIC, UsageCount.day >= first_week))
    if rows:
        db.session.execute(insert(UsageCount), [
            {"day": week, "metric": WEEKLY_METRIC, "label": label, "count": count}
            for week, label, count in rows])
    return len(rows)


def weekly_rows(today: date) -> list[tuple[date, str, int]]:
    """The stored conversion rows of the window's weeks (made now when there are none)."""
    from idp.usage.conversion import WEEKLY_METRIC, week_of

    first_week = week_of(today) - timedelta(weeks=CONVERSION_WEEKS - 1)
    snapshot = db.session.get(UsageSnapshot, DAILY_ROLLUP)
    if snapshot is None:
        refresh_daily(today)
    stored = db.session.execute(
        select(UsageCount.day, UsageCount.label, UsageCount.count)
        .where(UsageCount.metric == WEEKLY_METRIC, UsageCount.day >= first_week)
    ).all()
    return [(day, label, count) for day, label, count in stored]


def _count_days(name: str, first_day: date, end_day: date) -> list[tuple[date, str, int]]:
    """Rows of [first_day, end_day) per UTC day and label: one indexed range scan."""
    timestamp, label = DAILY[name]()
    start = datetime.combine(first_day, time.min, tzinfo=utcnow().tzinfo)
    end = datetime.combine(end_day, time.min, tzinfo=utcnow().tzinfo)
    day = _day(timestamp)
    rows = db.session.execute(
        select(day, label, func.count())
        .where(timestamp >= start, timestamp < end)
        .group_by(day, label)
    ).all()
    return [(_as_date(row[0]), row[1] or "?", row[2]) for row in rows]


def _day(timestamp: Any) -> Any:
    """The UTC calendar day of a timestamp column, on either backend."""
    if db.engine.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", timestamp))
    return func.date(timestamp)  # SQLite keeps UTC text


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _store_snapshot(name: str, data: dict[str, Any]) -> None:
    snapshot = db.session.get(UsageSnapshot, name) or UsageSnapshot(name=name)
    snapshot.data = data
    snapshot.computed_at = utcnow()
    db.session.add(snapshot)


@dataclass
class CrossChannel:
    both: int
    website: int
    miniprogram: int
    active: int

    @property
    def share(self) -> float:
        return self.both / self.active if self.active else 0.0


def cross_channel_accounts() -> tuple[CrossChannel, Any]:
    """The stored figure and when it was computed; computed now when there is none."""
    snapshot = db.session.get(UsageSnapshot, CROSS_CHANNEL)
    if snapshot is None:
        refresh_cross_channel()
        snapshot = db.session.get(UsageSnapshot, CROSS_CHANNEL)
    assert snapshot is not None
    return CrossChannel(**snapshot.data), snapshot.computed_at


def refresh_cross_channel() -> CrossChannel:
    figure = count_cross_channel()
    _store_snapshot(CROSS_CHANNEL, asdict(figure))
    db.session.commit()
    return figure


def count_cross_channel() -> CrossChannel:
    active = Account.status == AccountStatus.ACTIVE

    def holders(*conditions: Any) -> Any:
        return (
            select(Identity.account_id)
            .join(Account, Account.id == Identity.account_id)
            .where(active, or_(*conditions))
        )

    website_appids = select(WeChatApp.appid).where(WeChatApp.kind == WeChatAppKind.WEBSITE)
    mini_appids = select(WeChatApp.appid).where(WeChatApp.kind == WeChatAppKind.MINIPROGRAM)
    website = holders(
        Identity.kind == IdentityKind.PASSWORD,
        (Identity.kind == IdentityKind.PHONE) & Identity.verified.is_(True)
        & (Identity.verified_by == ProofMethod.SMS),
        (Identity.kind == IdentityKind.WECHAT_OPENID) & Identity.namespace.in_(website_appids),
    )
    mini = holders(
        (Identity.kind == IdentityKind.WECHAT_OPENID) & Identity.namespace.in_(mini_appids)
    )

    def count(query: Any) -> int:
        return db.session.scalar(select(func.count(distinct(query.c.account_id)))
                                 .select_from(query)) or 0

    website_sub, mini_sub = website.subquery(), mini.subquery()
    both = (
        select(website_sub.c.account_id)
        .where(website_sub.c.account_id.in_(select(mini_sub.c.account_id)))
        .subquery()
    )
    return CrossChannel(
        both=count(both),
        website=count(website_sub),
        miniprogram=count(mini_sub),
        active=db.session.scalar(select(func.count()).where(active)) or 0,
    )
