"""The admin's one search box (`identity/lookup.py` finds the accounts, on indexes); counts
stop at `COUNT_CAP`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from idp.extensions import db
from idp.identity.lookup import matching_account_ids
from idp.identity.models import Account

PER_PAGE = 20
COUNT_CAP = 1000


@dataclass
class SearchPage:
    accounts: list[Account]
    page: int
    pages: int
    total: int
    more: bool = False  # there are more than `total` (= COUNT_CAP) matches


def search_accounts(query: str, page: int = 1, per_page: int = PER_PAGE) -> SearchPage:
    text = query.strip()[:255]
    # At most COUNT_CAP + 1 matches are ever looked at: sorting a page out of a hundred
    # thousand name matches is what made a search take a second.
    matches = (matching_account_ids(text) if text else select(Account.id)).limit(COUNT_CAP + 1)
    counted = db.session.scalar(select(func.count()).select_from(matches.subquery())) or 0
    more = counted > COUNT_CAP
    total = min(counted, COUNT_CAP)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(page, 1), pages)
    listing = select(Account)
    if text:
        listing = listing.where(Account.id.in_(matches.scalar_subquery()))
    accounts = db.session.scalars(
        listing.options(selectinload(Account.claims))
        .order_by(Account.created_at.desc(), Account.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return SearchPage(list(accounts), page, pages, total, more)
