"""Figures too costly to count per request, computed on a schedule by `idp worker`.

Cross-channel accounts: active accounts that hold a website identity — a password, a phone
verified by SMS code, or the openid of a website (QR-login) WeChat app — and also the openid of
a mini-program WeChat app. Over millions of identities these distinct counts take seconds, so
the dashboard reads the last stored figure (and computes it once when there is none yet).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import distinct, func, or_, select

from idp.extensions import db
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind
from idp.identity.rules import ProofMethod
from idp.models_base import utcnow
from idp.usage.models import UsageSnapshot
from idp.wechat.models import WeChatApp, WeChatAppKind

CROSS_CHANNEL = "cross_channel"


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
    snapshot = db.session.get(UsageSnapshot, CROSS_CHANNEL) or UsageSnapshot(name=CROSS_CHANNEL)
    snapshot.data = asdict(figure)
    snapshot.computed_at = utcnow()
    db.session.add(snapshot)
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
