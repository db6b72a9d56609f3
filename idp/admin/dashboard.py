"""The dashboard's figures, from the rows real logins, sign-ups, merges and token requests leave.

- logins per day by channel: `LoginEvent` (website_password, website_wechat, miniprogram);
- new accounts per day by channel: `Account.created_via`;
- merges per day by rule: `MergeRecord` (undone ones included: they happened);
- cross-channel accounts (`usage/rollups.py`): counted by `idp worker` on a schedule, since
  distinct counts over millions of identities take seconds;
- WeChat API error rate per day and token issuance by grant: the `idp.usage` counters.

Each per-day series is one indexed range scan over the window (`created_at` indexes), so the
page costs the same with a thousand accounts or a million.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from idp.accounts.models import LoginEvent
from idp.extensions import db
from idp.identity.models import Account, MergeRecord
from idp.models_base import utcnow
from idp.usage.counters import TOKEN_ISSUED, WECHAT_CALL, daily_counts
from idp.usage.rollups import CrossChannel, cross_channel_accounts

DAYS = 14
# A series per label: {label: [count for each day]}.
Series = dict[str, list[int]]


@dataclass
class Dashboard:
    days: list[date]
    logins: Series
    new_accounts: Series
    merges: Series
    tokens: Series
    wechat_calls: Series
    wechat_error_rate: list[float | None]
    cross_channel: CrossChannel
    cross_channel_at: datetime  # when `idp worker` last counted it

    @property
    def totals(self) -> dict[str, int]:
        return {
            name: sum(sum(values) for values in series.values())
            for name, series in (
                ("logins", self.logins), ("new_accounts", self.new_accounts),
                ("merges", self.merges), ("tokens", self.tokens),
            )
        }


def build_dashboard(today: date | None = None, days: int = DAYS) -> Dashboard:
    today = today or utcnow().date()
    window = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    since = datetime.combine(window[0], datetime.min.time()).replace(tzinfo=utcnow().tzinfo)
    calls = _series(window, daily_counts(WECHAT_CALL, window[0]))
    cross_channel, cross_channel_at = cross_channel_accounts()
    return Dashboard(
        days=window,
        logins=_per_day(window, LoginEvent.created_at, LoginEvent.channel, since),
        new_accounts=_per_day(window, Account.created_at, Account.created_via, since),
        merges=_per_day(window, MergeRecord.created_at, MergeRecord.rule, since),
        tokens=_series(window, daily_counts(TOKEN_ISSUED, window[0])),
        wechat_calls=calls,
        wechat_error_rate=error_rate(calls, len(window)),
        cross_channel=cross_channel,
        cross_channel_at=cross_channel_at,
    )


def error_rate(calls: Series, length: int) -> list[float | None]:
    rates: list[float | None] = []
    for index in range(length):
        total = sum(values[index] for values in calls.values())
        errors = sum(values[index] for label, values in calls.items() if label.endswith("error"))
        rates.append(errors / total if total else None)
    return rates


def _per_day(window: list[date], timestamp: Any, label: Any, since: datetime) -> Series:
    day = _day(timestamp)
    rows = db.session.execute(
        select(day, label, func.count()).where(timestamp >= since).group_by(day, label)
    ).all()
    return _series(window, [(_as_date(row[0]), row[1] or "?", row[2]) for row in rows])


def _day(timestamp: Any) -> Any:
    """The UTC calendar day of a timestamp column, on either backend."""
    if db.engine.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", timestamp))
    return func.date(timestamp)  # SQLite keeps UTC text


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _series(window: list[date], rows: list[tuple[date, str, int]]) -> Series:
    index = {day: position for position, day in enumerate(window)}
    series: Series = defaultdict(lambda: [0] * len(window))
    for day, label, count in rows:
        if day in index:
            series[label][index[day]] += count
    return dict(sorted(series.items()))
