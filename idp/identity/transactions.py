"""One engine call, one database transaction: commit on success, roll back on anything else.

Concurrency is settled by the database, not by reading first: the unique index
`uq_identity_verified` lets exactly one of two racing writers hold a verified identity, and
`lock_accounts` serialises changes to the same accounts. The loser of such a race gets an
`IntegrityError` (or, on PostgreSQL, a deadlock/serialisation error), or finds after locking that
the world moved (`StaleState`); the whole call is then rolled back and run again from the start,
where it sees the winner's committed rows.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from idp.extensions import db
from idp.identity.models import Account

T = TypeVar("T")



class StaleState(Exception):  # noqa: N818 - a signal, not a failure
    """What was read before locking changed under us: start the call again."""


# Losing a race: a unique index said no, PostgreSQL broke a deadlock, or we saw it ourselves.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (IntegrityError, OperationalError, StaleState)


def run_in_transaction(work: Callable[[], T], *, attempts: int = 1) -> T:
    """Runs `work` and commits; any exception rolls everything back. Races (see the module
    docstring) are retried up to `attempts` times in all. Pending changes the caller left in the
    session share the transaction: they are committed or rolled back with it."""
    for attempt in range(1, attempts + 1):
        try:
            result = work()
            db.session.commit()
            return result
        except RETRYABLE_ERRORS:
            db.session.rollback()
            if attempt == attempts:
                raise
            # A short random pause so that the racers do not collide again in lockstep.
            time.sleep(random.uniform(0.005, 0.03) * attempt)  # noqa: S311 - not security
        except BaseException:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def lock_accounts(*account_ids: str) -> dict[str, Account]:
    """Write-locks the accounts (always in the same order, so two callers cannot deadlock) and
    returns them freshly loaded.

    A no-op UPDATE is used rather than SELECT … FOR UPDATE because it locks on both backends:
    PostgreSQL takes the row locks, SQLite takes its database write lock (waiting out
    `busy_timeout`), and everything read afterwards in the transaction is current — including
    objects this session loaded before, which are expired here.
    """
    ordered = sorted(set(account_ids))
    db.session.flush()
    for account_id in ordered:
        db.session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(status=Account.status)
            .execution_options(synchronize_session=False)
        )
    # Whatever this session read before the lock may be stale now: forget it.
    db.session.expire_all()
    rows = db.session.scalars(select(Account).where(Account.id.in_(ordered))).all()
    return {row.id: row for row in rows}
