"""The record of which claims each client received about an account, and when (PIPL Art. 44,
45): the account centre's "who received my data" and the data export read it.

Written where the token endpoint already writes (`server.stage_token`: code redemption, refresh,
token exchange, phone binding's fresh tokens), in that transaction, as one upsert statement: one
row per (account, client, granted scope), its `last_released_at` moved on each issuance.
Userinfo and introspection only read tokens and never write here. An account's record is read
together with those of the accounts merged into it (`released_to`), so a merge moves nothing;
erasure deletes it (`erase_releases`, an `account_erased` hook).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from idp.extensions import db
from idp.identity.accounts import merged_account_ids
from idp.identity.catalogue import catalogue
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.oidc.models import ClaimRelease, Client
from idp.scopes import scope_set

UPSERT_DIALECTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def claims_of_scopes(scopes: Iterable[str]) -> list[str]:
    """The claim names these scopes release (`sub` always: every token names the account),
    built-in and declared by the operator."""
    return sorted(claim.name for claim in catalogue().released_by(set(scopes) | {"openid"}))


def record_release(account_id: str, client_id: str, scope: str | None,
                   now: datetime | None = None) -> None:
    """One statement in the caller's transaction (the caller commits): the row of this
    (account, client, scope) is created or its `last_released_at` moves on."""
    scopes = sorted(scope_set(scope))
    when = now or utcnow()
    values = {"claims": claims_of_scopes(scopes), "last_released_at": when}
    insert = UPSERT_DIALECTS[db.session.get_bind().dialect.name]
    statement = insert(ClaimRelease).values(
        account_id=account_id, client_id=client_id, scope=" ".join(scopes),
        first_released_at=when, **values,
    )
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[ClaimRelease.account_id, ClaimRelease.client_id, ClaimRelease.scope],
            set_=values,
        )
    )


@dataclass
class Recipient:
    """One client that received claims about the account: each scope it was granted, with the
    claims it released and the first and latest time."""

    client: Client
    releases: list[ClaimRelease] = field(default_factory=list)

    @property
    def claims(self) -> list[str]:
        return sorted({name for row in self.releases for name in row.claims or []})

    @property
    def first_released_at(self) -> datetime:
        return min(row.first_released_at for row in self.releases)

    @property
    def last_released_at(self) -> datetime:
        return max(row.last_released_at for row in self.releases)


def released_to(account: Account) -> list[Recipient]:
    """Every client that received claims about the account, by client name; within one, its
    releases newest first. Two queries, plus one per level of merges."""
    rows = db.session.execute(
        select(ClaimRelease, Client)
        .join(Client, Client.client_id == ClaimRelease.client_id)
        .where(ClaimRelease.account_id.in_(merged_account_ids(account)))
        .order_by(ClaimRelease.last_released_at.desc(), ClaimRelease.id)
    ).all()
    recipients: dict[str, Recipient] = {}
    for release, client in rows:
        recipients.setdefault(client.client_id, Recipient(client)).releases.append(release)
    return sorted(recipients.values(), key=lambda found: found.client.name.lower())


def erase_releases(account_id: str) -> dict[str, int]:
    result = db.session.execute(
        delete(ClaimRelease).where(ClaimRelease.account_id == account_id)
        .execution_options(synchronize_session=False)
    )
    return {ClaimRelease.__tablename__: cast(CursorResult[Any], result).rowcount}
