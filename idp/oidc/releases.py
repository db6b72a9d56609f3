"""The record of which claims each client received about an account, and when (PIPL Art. 44,
45): the account centre's "who received my data" and the data export read it.

Written where the token endpoint already writes (`server.stage_token`: code redemption, refresh,
token exchange, phone binding's fresh tokens), in that transaction, as one upsert statement: one
row per (account, client, granted scope), its `last_released_at` moved by an issuance more than
`RECORD_INTERVAL` after the recorded one (or releasing other claims). Within the interval the
statement writes nothing and takes no lock: without that, every refresh of one account and
client rewrote one row, and concurrent refreshes queued on its row lock until each commit.
A refresh and a code redemption also skip
the statement's upsert when this process wrote that record less than `RECORD_INTERVAL` ago with
the same claims (`recorded_lately`): the upsert would write nothing then, yet its check cost
PostgreSQL a lookup on every refresh (bench/README.md). Userinfo and introspection only read
tokens and never write here. An account's record is read
together with those of the accounts merged into it (`released_to`), so a merge moves nothing;
erasure deletes it (`erase_releases`, an `account_erased` hook).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, Table, Text, bindparam, delete, exists, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite

from idp.extensions import db, stage_write
from idp.identity.accounts import merged_account_ids
from idp.identity.catalogue import catalogue
from idp.identity.models import Account
from idp.models_base import utcnow
from idp.oidc.models import ClaimRelease, Client
from idp.scopes import scope_set

# How stale the recorded latest release may be before an issuance moves it: the account centre
# shows when a client last received the claims, to the minute.
RECORD_INTERVAL = timedelta(minutes=1)


def claims_of_scopes(scopes: Iterable[str]) -> list[str]:
    """The claim names these scopes release (`sub` always: every token names the account),
    built-in and declared by the operator. Kept per scope set while the catalogue is the same."""
    current = catalogue()
    known: tuple[Any, dict[frozenset[str], list[str]]] | None = current_app.extensions.get(
        "idp.released_claims")
    if known is None or known[0] is not current:
        known = current_app.extensions["idp.released_claims"] = (current, {})
    key = frozenset(scopes)
    found: list[str] | None = known[1].get(key)
    if found is None:
        found = known[1][key] = sorted(
            claim.name for claim in current.released_by(set(key) | {"openid"}))
    return found


def record_release(account_id: str, client_id: str, scope: str | None,
                   now: datetime | None = None) -> None:
    """Staged for the caller's commit (`idp.extensions.stage_write`), sent with the token's
    other writes: the row of this (account, client, scope) is created or its
    `last_released_at` moves on."""
    stage_write((upsert(db.session.get_bind().dialect.name),
                 release_values(account_id, client_id, scope, now)))


def release_values(account_id: str, client_id: str, scope: str | None,
                   now: datetime | None = None) -> dict[str, Any]:
    """The parameters of `upsert` (prefixed `release_`) for one issuance."""
    scopes = tuple(sorted(scope_set(scope)))
    at = now or utcnow()
    return {
        "release_account": account_id, "release_client": client_id,
        "release_scope": " ".join(scopes),
        "release_claims": claims_of_scopes(scopes),
        "release_at": at,
        "release_fresh_after": at - RECORD_INTERVAL,
    }


# This process's latest write of each record (`recorded_lately`), per app; past this many
# records it starts again (a forgotten record is written again: never a record missed).
RECENT_RECORDS = 10_000
_RECENT = "idp.recent_releases"


def recorded_lately(values: dict[str, Any]) -> bool:
    """Whether the record of `values` (`release_values`') held the same claims less than
    RECORD_INTERVAL before their time when this process last saw it committed
    (`note_recorded`): the upsert would find it fresh and write nothing. The record is only
    ever created or moved on, except by an erasure, after which the account holds no tokens."""
    recent: dict[tuple[str, str, str], tuple[list[str], datetime]] = current_app.extensions.get(
        _RECENT, {})
    found = recent.get((values["release_account"], values["release_client"],
                        values["release_scope"]))
    return (found is not None and found[0] == values["release_claims"]
            and found[1] > values["release_fresh_after"])


def note_recorded(values: dict[str, Any], prior: datetime | None) -> None:
    """A committed issuance whose statement held the upsert of `values`: `prior` — the record's
    latest release before that statement, with the same claims (`prior_release`; None: no
    such record) — tells what the record holds now: `prior` if the upsert found it fresh (then
    it wrote nothing), else the issuance's own time."""
    fresh = prior is not None and prior > values["release_fresh_after"]
    recent = current_app.extensions.setdefault(_RECENT, {})
    if len(recent) >= RECENT_RECORDS:
        recent.clear()
    recent[(values["release_account"], values["release_client"], values["release_scope"])] = (
        values["release_claims"], prior if fresh else values["release_at"])


@functools.cache
def prior_release(dialect: str) -> Any:
    """The record's latest release with the same claims, before the upsert (`upsert`'s
    parameters), for `note_recorded`: a statement's snapshot does not see its own writes."""
    table = cast(Table, ClaimRelease.__table__)
    claims = bindparam("release_claims", type_=table.c.claims.type)
    return select(table.c.last_released_at).where(
        table.c.account_id == bindparam("release_account"),
        table.c.client_id == bindparam("release_client"),
        table.c.scope == bindparam("release_scope"),
        sql_cast(table.c.claims, Text) == sql_cast(claims, Text),
    )


def forget_recent() -> None:
    """Every record is written again by the next issuance (tests: a record moved by hand)."""
    current_app.extensions.pop(_RECENT, None)


@functools.cache
def upsert(dialect: str, only_if: Any = None) -> Any:
    """INSERT … SELECT … WHERE NOT EXISTS (a fresh record of the same claims) ON CONFLICT DO
    UPDATE: when the record is fresh the SELECT yields no row, so nothing is written or locked.
    `only_if`, a condition built once, gates it further (the refresh's rotation: only when the
    token was claimed in the same statement)."""
    table = cast(Table, ClaimRelease.__table__)
    insert: Any = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    account: Any = bindparam("release_account")
    client: Any = bindparam("release_client")
    scope: Any = bindparam("release_scope")
    claims = bindparam("release_claims", type_=table.c.claims.type)
    at = bindparam("release_at", type_=table.c.last_released_at.type)

    def typed(value: Any, column: Any) -> Any:
        """PostgreSQL deduces one type per parameter: the selected ones are cast to their
        columns' (SQLite would turn a date cast to DATETIME into a number)."""
        return sql_cast(value, column.type) if dialect == "postgresql" else value

    fresh = exists().where(
        table.c.account_id == account, table.c.client_id == client, table.c.scope == scope,
        table.c.last_released_at > bindparam("release_fresh_after",
                                              type_=table.c.last_released_at.type),
        sql_cast(table.c.claims, Text) == sql_cast(claims, Text),
    )
    statement = insert(table).from_select(
        ["account_id", "client_id", "scope", "claims", "first_released_at", "last_released_at"],
        select(*(typed(value, column) for value, column in (
            (account, table.c.account_id), (client, table.c.client_id), (scope, table.c.scope),
            (claims, table.c.claims), (at, table.c.first_released_at),
            (at, table.c.last_released_at),
        ))).where(~fresh, *(() if only_if is None else (only_if,))),
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.account_id, table.c.client_id, table.c.scope],
        set_={"claims": statement.excluded.claims,
              "last_released_at": statement.excluded.last_released_at},
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
