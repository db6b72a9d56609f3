"""The one search box: a phone in any usual spelling, a UUID (`sub`, also a merged-away one),
an openid, a unionid, an email, or part of a name or nickname."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select

from idp.extensions import db
from idp.identity.lookup import matching_account_ids
from idp.identity.models import Account

PER_PAGE = 20


@dataclass
class SearchPage:
    accounts: list[Account]
    page: int
    pages: int
    total: int


def search_accounts(query: str, page: int = 1, per_page: int = PER_PAGE) -> SearchPage:
    statement = select(Account)
    text = query.strip()[:255]
    if text:
        statement = statement.where(Account.id.in_(matching_account_ids(text)))
    total = db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(page, 1), pages)
    accounts = db.session.scalars(
        statement.order_by(Account.created_at.desc(), Account.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return SearchPage(list(accounts), page, pages, total)
