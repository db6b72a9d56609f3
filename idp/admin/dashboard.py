"""The dashboard's figures, from the rows real logins, sign-ups, merges and token requests leave.

- logins per day by channel: `LoginEvent` (website_password, website_wechat, miniprogram);
- new accounts per day by channel: `Account.created_via`;
- merges per day by rule: `MergeRecord` (undone ones included: they happened);
- cross-channel accounts: active accounts that hold a website identity — a password, a phone
  verified by SMS code, or the openid of a website (QR-login) WeChat app — and also the openid of
  a mini-program WeChat app; their share of all active accounts;
- WeChat API error rate per day and token issuance by grant: the `idp.usage` counters.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import distinct, func, or_, select

from idp.accounts.models import LoginEvent
from idp.extensions import db
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind, MergeRecord
from idp.identity.rules import ProofMethod
from idp.models_base import utcnow
from idp.usage.counters import TOKEN_ISSUED, WECHAT_CALL, daily_counts
from idp.wechat.models import WeChatApp, WeChatAppKind

DAYS = 14
# A series per label: {label: [count for each day]}.
Series = dict[str, list[int]]


@dataclass
class CrossChannel:
    both: int
    website: int
    miniprogram: int
    active: int

    @property
    def share(self) -> float:
        return self.both / self.active if self.active else 0.0


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
    return Dashboard(
        days=window,
        logins=_per_day(window, LoginEvent.created_at, LoginEvent.channel, since),
        new_accounts=_per_day(window, Account.created_at, Account.created_via, since),
        merges=_per_day(window, MergeRecord.created_at, MergeRecord.rule, since),
        tokens=_series(window, daily_counts(TOKEN_ISSUED, window[0])),
        wechat_calls=calls,
        wechat_error_rate=error_rate(calls, len(window)),
        cross_channel=cross_channel_accounts(),
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


def cross_channel_accounts() -> CrossChannel:
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
