"""Counting, and reading the counts back.

Counts taken during a request are buffered on `g` and written after the response is built, on a
connection of their own, so they never join (or commit) the request's transaction. An upsert
(`INSERT … ON CONFLICT DO UPDATE count = count + n`) makes concurrent increments safe on SQLite
and PostgreSQL alike. A lost count is logged and forgotten: figures must never break a request.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from idp.extensions import db
from idp.models_base import utcnow
from idp.usage.models import UsageCount

log = logging.getLogger("idp.usage")

TOKEN_ISSUED = "token_issued"  # label: the grant type
WECHAT_CALL = "wechat_call"  # label: "<path> ok" or "<path> error"


def init_app(app: Flask) -> None:
    app.extensions["idp_wechat_on_call"] = on_wechat_call
    # Flask runs after-request functions last-registered first: count, then flush.
    app.after_request(_flush)
    app.after_request(_count_token_response)


def count(metric: str, label: str, amount: int = 1) -> None:
    if has_request_context():
        g.setdefault("usage_counts", Counter())[(metric, label[:96])] += amount
    else:
        write({(metric, label[:96]): amount})


def on_wechat_call(path: str, errcode: int | None, _seconds: float) -> None:
    """`WeChatClient`'s on_call hook: errcode 0 is a success; anything else, or no answer at
    all (None), is an error."""
    count(WECHAT_CALL, f"{path} {'ok' if errcode == 0 else 'error'}")


def _count_token_response(response: Response) -> Response:
    """Token issuance by grant, seen at the edge: a 200 from the token endpoint issued one."""
    if request.path == "/oauth/token" and response.status_code == 200:
        count(TOKEN_ISSUED, (request.form.get("grant_type") or "unknown")[:96])
    return response


def _flush(response: Response) -> Response:
    pending = g.pop("usage_counts", None)
    if pending:
        write(pending)
    return response


def write(counts: dict[tuple[str, str], int]) -> None:
    today = utcnow().date()
    try:
        with db.engine.begin() as connection:
            for (metric, label), amount in counts.items():
                connection.execute(_upsert(connection.dialect.name, today, metric, label, amount))
    except Exception:  # noqa: BLE001 - figures must never break a request
        log.warning("usage counts lost: %s", dict(counts), exc_info=current_app.debug)


def _upsert(dialect: str, day: date, metric: str, label: str, amount: int) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(UsageCount).values(day=day, metric=metric, label=label, count=amount)
    return statement.on_conflict_do_update(
        index_elements=["day", "metric", "label"],
        set_={"count": UsageCount.count + statement.excluded.count},
    )


def daily_counts(metric: str, since: date) -> list[tuple[date, str, int]]:
    rows = db.session.execute(
        select(UsageCount.day, UsageCount.label, UsageCount.count)
        .where(UsageCount.metric == metric, UsageCount.day >= since)
        .order_by(UsageCount.day, UsageCount.label)
    ).all()
    return [(row.day, row.label, row.count) for row in rows]
