"""The dashboard's figures, from the rows real logins, sign-ups, merges and token requests leave.

- logins per day by channel: `LoginEvent` (website_password, website_wechat, miniprogram);
- new accounts per day by channel: `Account.created_via`;
- merges per day by rule: `MergeRecord` (undone ones included: they happened);
- cross-channel accounts (`usage/rollups.py`): counted by `idp worker` on a schedule, since
  distinct counts over millions of identities take seconds;
- WeChat API error rate per day and token issuance by grant: the `idp.usage` counters;
- event delivery per day and sink, by outcome (first try, after retries, dead): the rollup;
- cross-channel conversion per week (`usage/conversion.py`): the rollup;
- the reconciliation: the latest stored run, the trend of its counts over the last runs, and the
  first findings of the latest run, each linked to its account, merge or delivery.

The per-day series come from the daily rollup (`usage/rollups.py`): completed days are counted
once, today live over an indexed range, so the page costs the same at a thousand accounts or a
million.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select

from idp.extensions import db
from idp.identity.models import ReconciliationFinding, ReconciliationRun
from idp.maintenance.reconciliation import REASONS
from idp.models_base import utcnow
from idp.usage.conversion import MINIPROGRAM, WEBSITE, week_of
from idp.usage.counters import TOKEN_ISSUED, WECHAT_CALL, daily_counts
from idp.usage.rollups import (
    CONVERSION_WEEKS,
    WINDOW_DAYS,
    CrossChannel,
    cross_channel_accounts,
    daily_rows,
    weekly_rows,
)

DAYS = WINDOW_DAYS
TREND_RUNS = 14
FINDINGS_SHOWN = 10
DELIVERY_OUTCOMES = ("first_try", "retried", "dead", "pending")
# A series per label: {label: [count for each day]}.
Series = dict[str, list[int]]


@dataclass
class WeekConversion:
    week: date  # its Monday
    website: int  # accounts first seen on the website that week
    website_converted: int  # ... that now also use the mini-program
    miniprogram: int
    miniprogram_converted: int

    @staticmethod
    def share(part: int, whole: int) -> float:
        return part / whole if whole else 0.0


@dataclass
class Reconciliation:
    latest: ReconciliationRun
    runs: list[ReconciliationRun]  # oldest first, the latest last
    trend: Series  # reason: [count per run]
    findings: list[ReconciliationFinding]  # the latest run's first ones

    @property
    def days(self) -> list[date]:
        return [run.started_at.date() for run in self.runs]


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
    deliveries: dict[str, Series] = field(default_factory=dict)  # sink: {outcome: per day}
    conversion: list[WeekConversion] = field(default_factory=list)
    reconciliation: Reconciliation | None = None

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
        deliveries=deliveries_by_sink(window, daily_rows("deliveries", window[0], today)),
        conversion=weekly_conversion(today),
        reconciliation=reconciliation(),
    )


def deliveries_by_sink(window: list[date], rows: list[tuple[date, str, int]]) -> dict[str, Series]:
    """{sink: {outcome: [count per day]}}, every outcome present for a steady legend."""
    by_sink: dict[str, list[tuple[date, str, int]]] = defaultdict(list)
    for day, label, count in rows:
        outcome, _, sink = label.partition(":")
        by_sink[sink].append((day, outcome, count))
    charts = {}
    for sink, sink_rows in sorted(by_sink.items()):
        series = _series(window, sink_rows)
        charts[sink] = {outcome: series.get(outcome, [0] * len(window))
                        for outcome in DELIVERY_OUTCOMES}
    return charts


def weekly_conversion(today: date) -> list[WeekConversion]:
    first = week_of(today) - timedelta(weeks=CONVERSION_WEEKS - 1)
    weeks = {first + timedelta(weeks=n): dict[str, int]() for n in range(CONVERSION_WEEKS)}
    for week, label, count in weekly_rows(today):
        if week in weeks:
            weeks[week][label] = count
    return [
        WeekConversion(week, counts.get(WEBSITE, 0), counts.get(f"{WEBSITE}_converted", 0),
                       counts.get(MINIPROGRAM, 0), counts.get(f"{MINIPROGRAM}_converted", 0))
        for week, counts in weeks.items()
    ]


def reconciliation() -> Reconciliation | None:
    """The last finished runs (a walk back over the primary key) and the latest's first
    findings (a keyset page); None before the first run."""
    runs = list(reversed(db.session.scalars(
        select(ReconciliationRun)
        .where(ReconciliationRun.finished_at.is_not(None))
        .order_by(ReconciliationRun.id.desc())
        .limit(TREND_RUNS)
    ).all()))
    if not runs:
        return None
    trend = {reason: [int((run.counts or {}).get(reason, 0)) for run in runs]
             for reason in REASONS}
    findings = list(db.session.scalars(
        select(ReconciliationFinding)
        .where(ReconciliationFinding.run_id == runs[-1].id)
        .order_by(ReconciliationFinding.id)
        .limit(FINDINGS_SHOWN)
    ))
    return Reconciliation(runs[-1], runs, trend, findings)


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
