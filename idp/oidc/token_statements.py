"""The protocol's token writes — the token endpoint's, and the authorization endpoint's code
(`idp.oidc.nonces` adds its nonce check to it) — as statements built once (SQLAlchemy Core,
bound parameters): building a statement per request cost more Python than running it
(bench/profile_token.py). A refresh and a code redemption read their row, build the answer,
then make their claim and every write that goes with it in one step (`rotation`,
`redemption`, `write_claiming`: on PostgreSQL one statement through the driver, a
transaction of its own), so their parameters are named apart."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, exists, func, insert, select, update
from sqlalchemy import cast as sql_cast

from idp import statements_alone
from idp.extensions import db
from idp.identity.transactions import run_in_transaction
from idp.oidc.models import AuthorizationCode, RefreshToken

_codes = cast(Table, AuthorizationCode.__table__)
_tokens = cast(Table, RefreshToken.__table__)
_when = _codes.c.expires_at.type
SQLITE_CLAIM_ATTEMPTS = 5

# A code's row, read before its redemption is decided (RFC 6749 §4.1.3).
READ_CODE = select(*_codes.c).where(_codes.c.code_digest == bindparam("digest"))
# RFC 6749 §4.1.2: a code is used once; of concurrent redemptions exactly one claims it. The
# claim records what was issued from the code, so that a replay can revoke it. Parameters
# `redeem_*`.
CLAIM_CODE = (
    update(_codes)
    .where(
        _codes.c.code_digest == bindparam("redeem_digest"),
        _codes.c.client_id == bindparam("redeem_client"),
        _codes.c.used_at.is_(None),
        _codes.c.expires_at > bindparam("redeem_now", type_=_when),
    )
    .values(used_at=bindparam("redeem_at", type_=_when),
            access_jti=bindparam("redeem_jti"), token_family=bindparam("redeem_family"))
)
_CODE_COLUMNS = ("code_digest", "client_id", "account_id", "redirect_uri", "scope", "nonce",
                 "code_challenge", "code_challenge_method", "auth_time", "amr", "session_id",
                 "expires_at")
# The authorization endpoint's one write (RFC 6749 §4.1.2); parameters prefixed `code_`.
INSERT_CODE = insert(_codes).values({name: bindparam(f"code_{name}") for name in _CODE_COLUMNS})
# A refresh token's row, read before its rotation is decided (RFC 6749 §6).
READ_REFRESH = select(*_tokens.c).where(_tokens.c.token_digest == bindparam("digest"))

# RFC 9700 §4.14.2: a refresh token rotates once; of racing refreshes exactly one claims it
# (the row lock makes a racer wait for the winner's commit, then find it rotated). Its
# parameters: `rotate_*`, the successor's `refresh_*` (`_REFRESH_COLUMNS`), the released
# claims' `release_*` (`idp.oidc.releases.release_values`).
_rotated: Any = bindparam("rotate_digest")
_rotate_now: Any = bindparam("rotate_now", type_=_when)
CLAIM_ROTATION = (
    update(_tokens)
    .where(
        _tokens.c.token_digest == _rotated,
        _tokens.c.rotated_at.is_(None),
        _tokens.c.revoked_at.is_(None),
        _tokens.c.expires_at > _rotate_now,
    )
    .values(rotated_at=bindparam("rotate_at", type_=_when))
)
_REFRESH_COLUMNS = ("token_digest", "family", "predecessor_digest", "client_id", "account_id",
                    "scope", "auth_time", "amr", "session_id", "access_jti",
                    "access_expires_at", "issued_at", "expires_at")
# Its parameters: each column's name prefixed with `refresh_`.
INSERT_REFRESH = insert(_tokens).values(
    {name: bindparam(f"refresh_{name}") for name in _REFRESH_COLUMNS}
)


@functools.cache
def rotation(dialect: str, release: bool = True) -> tuple[Any, ...]:
    """The statements of one rotation: the claim, the successor inserted and the released
    claims recorded (unless not `release`: `idp.oidc.releases.recorded_lately`).

    PostgreSQL: all of it as one statement, sent as a transaction of its own — the claim's
    `UPDATE … RETURNING` as a CTE that every other write reads, so that when the claim matches
    no row nothing at all is written; it returns how many rows it claimed (0 or 1). SQLite:
    the three statements, run one after the other in a transaction (`refresh_grant.rotate`)."""
    if dialect != "postgresql":
        return (CLAIM_ROTATION, INSERT_REFRESH, *_recorded_apart(dialect, release))
    claimed = CLAIM_ROTATION.returning(_tokens.c.family).cte("claimed")
    return (_claiming_recorded(dialect, claimed, (_successor(claimed),), release),)


@functools.cache
def redemption(dialect: str, refresh: bool, release: bool = True) -> tuple[Any, ...]:
    """The statements of one code redemption, as `rotation`'s: the code's claim (with what was
    issued from it), the refresh token inserted when one is issued, the released claims
    recorded (unless not `release`) — on PostgreSQL one statement returning how many codes it
    claimed."""
    if dialect != "postgresql":
        return (CLAIM_CODE, *((INSERT_REFRESH,) if refresh else ()),
                *_recorded_apart(dialect, release))
    claimed = CLAIM_CODE.returning(_codes.c.code_digest).cte("claimed")
    successor = (_successor(claimed),) if refresh else ()
    return (_claiming_recorded(dialect, claimed, successor, release),)


def _recorded_apart(dialect: str, release: bool) -> tuple[Any, ...]:
    """SQLite: the record's prior release read, then its upsert (when `release`)."""
    from idp.oidc.releases import prior_release, upsert

    return (prior_release(dialect), upsert(dialect)) if release else ()


def _claiming_recorded(dialect: str, claimed: Any, writes: tuple[Any, ...], release: bool) -> Any:
    """PostgreSQL: `_claiming` of `claimed` and `writes`, and (when `release`) the record's
    upsert, gated on the claim, with its prior release returned."""
    from idp.oidc.releases import prior_release, upsert

    if not release:
        return _claiming(claimed, *writes)
    return _claiming(claimed, *writes, upsert(dialect, _any(claimed)),
                     prior=prior_release(dialect))


def _successor(claimed: Any) -> Any:
    """INSERT_REFRESH's row, inserted only if `claimed` holds a row. PostgreSQL deduces one
    type per parameter of a SELECT list: each is cast to its column's."""
    return insert(_tokens).from_select(
        list(_REFRESH_COLUMNS),
        select(*(sql_cast(bindparam(f"refresh_{name}", type_=_tokens.c[name].type),
                          _tokens.c[name].type) for name in _REFRESH_COLUMNS))
        .where(_any(claimed)),
    )


def _any(claimed: Any) -> Any:
    return exists(select(claimed.c[0]))


def _claiming(claimed: Any, *writes: Any, prior: Any = None) -> Any:
    """One statement: `claimed` and `writes` as CTEs, returning the count of claimed rows (and
    the value of the scalar query `prior`, as `release_prior`, read before the writes)."""
    columns = [func.count().label("claimed")]
    if prior is not None:
        columns.append(prior.scalar_subquery().label("release_prior"))
    count = select(*columns).select_from(claimed)
    return count.add_cte(*(write.cte(f"write_{index}") for index, write in enumerate(writes)))


def first_alone(statement: Any, **parameters: Any) -> dict[str, Any] | None:
    """The first row `statement` returns, by column key: on PostgreSQL through the driver, as a
    transaction of its own when none is open (`idp.statements_alone`); on SQLite
    through SQLAlchemy, in the session's transaction."""
    if db.engine.dialect.name == "postgresql":
        return statements_alone.first_alone(statement, parameters)
    row = db.session.execute(statement, parameters).first()
    return dict(row._mapping) if row is not None else None


def write_claiming(built: Callable[..., tuple[Any, ...]], values: dict[str, Any],
                   release: dict[str, Any]) -> bool:
    """Runs the statements `built` gives for the dialect (`rotation`, `redemption`): a claim
    and the writes that go with it, atomically; True when the claim took its row, else nothing
    was written. `release` (`releases.release_values`, among `values` too): the record of the
    released claims is written with them unless this process saw it fresh lately
    (`releases.recorded_lately`); when it was, what it holds now is noted.

    PostgreSQL: their one statement, as a transaction of its own unless this request has one
    open (an account read from the database), which it then commits. SQLite: a transaction
    of their own, begun on a fresh snapshot (waiting for a racer's write lock then ends on
    what the racer wrote); a racer that still meets "database is locked" tries again
    (`idp.identity.transactions.run_in_transaction`)."""
    from idp.oidc import releases

    written = not releases.recorded_lately(release)
    claimed = _claim_and_write(built(db.engine.dialect.name, release=written), values)
    if claimed is not None and written:
        releases.note_recorded(release, claimed["release_prior"])
    return claimed is not None


def _claim_and_write(statements: tuple[Any, ...], values: dict[str, Any]) -> dict[str, Any] | None:
    """`write_claiming`'s statements run: when the claim took its row, `claimed`, and
    `release_prior` when the record's upsert was among them; else None."""
    if db.engine.dialect.name == "postgresql":
        (statement,) = statements
        in_session = statements_alone.in_open_transaction()
        claimed = statements_alone.first_alone(statement, values)
        if in_session:
            db.session.commit()
        return claimed if claimed is not None and claimed["claimed"] == 1 else None
    claim, *writes = statements

    def claim_and_write() -> dict[str, Any] | None:
        if cast(CursorResult[Any], db.session.execute(claim, values)).rowcount != 1:
            return None  # nothing written
        found: dict[str, Any] = {"claimed": 1}
        for write in writes:
            result = db.session.execute(write, values)
            if write.is_select:  # the record's prior release, read before its upsert
                found["release_prior"] = result.scalar()
        return found

    db.session.commit()  # nothing is pending: the claimed row was only read
    return run_in_transaction(claim_and_write, attempts=SQLITE_CLAIM_ATTEMPTS)
