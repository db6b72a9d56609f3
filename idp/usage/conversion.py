"""Cross-channel conversion per week: of the accounts first seen on the website in a week, how
many now also use the mini-program, and the reverse.

"First seen" is the channel that created the account (`Account.created_via`: website,
website_wechat → website; miniprogram → mini-program). "Uses the other side" is holding one of
its identities today, as for the cross-channel figure (`rollups.count_cross_channel`): the
openid of a mini-program app; or a password, a phone verified by SMS code, or the openid of a
website WeChat app. Identities follow merges, so a person who signed up on the website and was
later merged with their mini-program account counts as converted. Active accounts only.

One grouped query per side over an indexed range of `account.created_at`, with an indexed
EXISTS per account on `identity.account_id`; run by the worker, never per request.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, exists, func, or_, select

from idp.extensions import db
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind
from idp.identity.rules import ProofMethod
from idp.models_base import utcnow
from idp.wechat.models import WeChatApp, WeChatAppKind

WEEKLY_METRIC = "weekly:conversion"
WEBSITE, MINIPROGRAM = "website", "miniprogram"
SIDES = {WEBSITE: ("website", "website_wechat"), MINIPROGRAM: ("miniprogram",)}
# Labels: "<side>" the cohort, "<side>_converted" those who now use the other side.


def week_of(day: date) -> date:
    """The Monday of the ISO week of `day`."""
    return day - timedelta(days=day.weekday())


def count_conversion(first_week: date, end_week: date) -> list[tuple[date, str, int]]:
    """(week, label, count) for accounts created in [first_week, end_week)."""
    totals: dict[tuple[date, str], int] = {}
    for side, channels in SIDES.items():
        other = _website_identity() if side == MINIPROGRAM else _miniprogram_identity()
        converted = exists(select(Identity.id).where(Identity.account_id == Account.id, other))
        week = _week(Account.created_at)
        start = datetime.combine(first_week, time.min, tzinfo=utcnow().tzinfo)
        end = datetime.combine(end_week, time.min, tzinfo=utcnow().tzinfo)
        result = db.session.execute(
            select(week, func.count(), func.sum(_as_int(converted)))
            .where(Account.created_at >= start, Account.created_at < end,
                   Account.created_via.in_(channels), Account.status == AccountStatus.ACTIVE)
            .group_by(week)
        ).all()
        for day, cohort, done in result:
            monday = week_of(_as_date(day))
            for label, count in ((side, cohort), (f"{side}_converted", done)):
                totals[monday, label] = totals.get((monday, label), 0) + int(count or 0)
    return [(monday, label, count) for (monday, label), count in sorted(totals.items())]


def _miniprogram_identity() -> Any:
    appids = select(WeChatApp.appid).where(WeChatApp.kind == WeChatAppKind.MINIPROGRAM)
    return (Identity.kind == IdentityKind.WECHAT_OPENID) & Identity.namespace.in_(appids)


def _website_identity() -> Any:
    appids = select(WeChatApp.appid).where(WeChatApp.kind == WeChatAppKind.WEBSITE)
    return or_(
        Identity.kind == IdentityKind.PASSWORD,
        (Identity.kind == IdentityKind.PHONE) & Identity.verified.is_(True)
        & (Identity.verified_by == ProofMethod.SMS),
        (Identity.kind == IdentityKind.WECHAT_OPENID) & Identity.namespace.in_(appids),
    )


def _as_int(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def _week(timestamp: Any) -> Any:
    """The day of a timestamp, grouped by the Python side into ISO weeks' Mondays: on
    PostgreSQL date_trunc('week') is the Monday already; SQLite has no week truncation, so it
    groups by day and `count_conversion` folds the days (7 rows a week at most)."""
    if db.engine.dialect.name == "postgresql":
        return func.date(func.date_trunc("week", func.timezone("UTC", timestamp)))
    return func.date(timestamp)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
