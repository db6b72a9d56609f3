"""The dashboard's figures, from the rows real logins, sign-ups, merges and token requests leave.

- logins per day by channel: `LoginEvent` (website_password, website_wechat, miniprogram);
- new accounts per day by channel: `Account.created_via`;
- merges per day by rule: `MergeRecord` (undone ones included: they happened);
- cross-channel accounts (`usage/rollups.py`): counted by `idp worker` on a schedule, since
  distinct counts over millions of identities take seconds;
- WeChat API error rate per day and token issuance by grant: the `idp.usage` counters.

The per-day series come from the daily rollup (`usage/rollups.py`): completed days are counted
once, today live over an indexed range, so the page costs the same at a thousand accounts or a
million.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from idp.models_base import utcnow
from idp.usage.counters import TOKEN_ISSUED, WECHAT_CALL, daily_counts
from idp.usage.rollups import WINDOW_DAYS, CrossChannel, cross_channel_accounts, daily_rows

DAYS = WINDOW_DAYS
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
    calls = _series(window, daily_counts(WECHAT_CALL, window[0]))
    cross_channel, cross_channel_at = cross_channel_accounts()
    return Dashboard(
        days=window,
        logins=_series(window, daily_rows("logins", window[0], today)),
        new_accounts=_series(window, daily_rows("new_accounts", window[0], today)),
        merges=_series(window, daily_rows("merges", window[0], today)),
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


def _series(window: list[date], rows: list[tuple[date, str, int]]) -> Series:
    index = {day: position for position, day in enumerate(window)}
    series: Series = defaultdict(lambda: [0] * len(window))
    for day, label, count in rows:
        if day in index:
            series[label][index[day]] += count
    return dict(sorted(series.items()))
