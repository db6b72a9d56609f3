"""Factories for the identity tests: password users (website), WeChat users, ageing, dumps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.links import resolve_wechat_identity
from idp.identity.models import Account, AuditEvent
from idp.models_base import utcnow

MINI_APPID = "wxmini000000000001"
OTHER_MINI_APPID = "wxmini000000000002"
WEB_APPID = "wxweb0000000000001"


@pytest.fixture
def wechat_user(app: Any) -> Any:
    """resolve_wechat_identity as a mini-program login would call it; returns the account."""

    def factory(
        openid: str, unionid: str | None = None, appid: str = MINI_APPID, **kwargs: Any
    ) -> Account:
        account, _created = resolve_wechat_identity(
            appid, openid, unionid, kwargs.pop("channel", "miniprogram"), Actor.system("test")
        )
        return account

    return factory


def age(account: Account, days: float) -> Account:
    """Backdates an account, so that which one is older is never left to the clock."""
    account.created_at = utcnow() - timedelta(days=days)
    db.session.commit()
    return account


def audit_actions(account_id: str | None = None) -> list[str]:
    query = sa.select(AuditEvent.action).order_by(AuditEvent.id)
    if account_id is not None:
        query = query.where(AuditEvent.account_id == account_id)
    return list(db.session.scalars(query))


def dump_database() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: equal dumps mean equal databases."""
    db.session.expire_all()
    dump = {}
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = connection.execute(sa.select(table).order_by(*order)).all()
            dump[table.name] = [tuple(row) for row in rows]
    return dump
