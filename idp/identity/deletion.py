"""Account deletion (注销, PIPL art. 47): asked for by the user, carried out after a grace period.

- `schedule_deletion`: the account enters its grace period (IDP_DELETION_GRACE_DAYS, 15 by
  default) and is signed out everywhere; signing in again offers to cancel.
- `cancel_deletion`: the user (or an admin) changes their mind within the grace period.
- `erase_account`: its personal data goes — identities (phone, email, WeChat ids, password),
  profile claims, consents, second factors and recovery codes, sessions with their device and
  network, login history — and its tokens die. The account row stays as a tombstone with status
  `deleted` and no personal data, so its `sub` is never issued again; the audit trail keeps what
  happened but loses the identity values it named.
- `execute_due_deletions`: what `idp worker` runs each round.

Each is one transaction under the account's lock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select

from idp.extensions import db
from idp.identity import account_events, audit, hooks
from idp.identity.accounts import IdentityError
from idp.identity.audit import Actor
from idp.identity.hooks import announce_account_event
from idp.identity.models import (
    PERSONAL_DETAIL_KEYS,
    Account,
    AccountStatus,
    AuditEvent,
    Identity,
    LoginSession,
    ProfileClaim,
)
from idp.identity.sign_out import end_credentials, sign_out_everywhere
from idp.identity.transactions import lock_accounts, run_in_transaction
from idp.models_base import utcnow

log = logging.getLogger(__name__)



class DeletionRefused(IdentityError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def grace_period() -> timedelta:
    return timedelta(days=float(current_app.config.get("IDP_DELETION_GRACE_DAYS", 15)))


def schedule_deletion(account: Account, actor: Actor, reason: str = "user request") -> datetime:
    """Starts the grace period; returns when the account will be erased."""
    account_id = account.id

    def work() -> datetime:
        locked = _active(account_id)
        if locked.deletion_due_at is not None:
            return locked.deletion_due_at
        now = utcnow()
        locked.deletion_requested_at = now
        locked.deletion_due_at = now + grace_period()
        sign_out_everywhere(locked, actor, reason="deletion requested")
        audit.record("account.deletion_scheduled", actor, account_id, reason=reason,
                     due_at=locked.deletion_due_at.isoformat())
        announce_account_event(account_events.ACCOUNT_DELETION_SCHEDULED, account_id, actor,
             details={"deletion_due_at": locked.deletion_due_at.isoformat()})
        return locked.deletion_due_at

    return run_in_transaction(work, attempts=4)


def cancel_deletion(account: Account, actor: Actor) -> None:
    account_id = account.id

    def work() -> None:
        locked = _active(account_id)
        if locked.deletion_due_at is None:
            raise DeletionRefused("not_pending", "no deletion is pending for this account")
        locked.deletion_requested_at = None
        locked.deletion_due_at = None
        audit.record("account.deletion_cancelled", actor, account_id, reason="cancelled")

    run_in_transaction(work, attempts=4)


def erase_account(account: Account, actor: Actor) -> dict[str, int]:
    """Erases now (the worker when due, or an admin); returns what was removed."""
    account_id = account.id
    return run_in_transaction(lambda: _erase(account_id, actor), attempts=4)


def _erase(account_id: str, actor: Actor) -> dict[str, int]:
    locked = lock_accounts(account_id).get(account_id)
    if locked is None or locked.status in (AccountStatus.DELETED, AccountStatus.MERGED):
        raise DeletionRefused("not_erasable", "the account is gone or merged already")
    now = utcnow()
    locked.tokens_valid_after = now
    ended = end_credentials(locked, now)  # back-channel logout for any session still live
    # Before the consents and tokens go: they say which relying parties held the account. The
    # event names the `sub` only (no personal data).
    announce_account_event(account_events.ACCOUNT_DELETED, account_id, actor)
    removed: dict[str, Any] = {"refresh_tokens": ended["refresh_tokens"]}
    for model in (Identity, ProfileClaim, LoginSession):
        result = db.session.execute(
            delete(model).where(model.account_id == account_id)
            .execution_options(synchronize_session=False)
        )
        removed[model.__tablename__] = int(getattr(result, "rowcount", 0) or 0)
    # Consents (`idp.oidc`), second factors, recovery codes, terms, login history
    # (`idp.accounts`): erased by the hooks those domains register.
    removed.update(hooks.account_erased(account_id))
    for event in db.session.scalars(select(AuditEvent).where(AuditEvent.account_id == account_id)):
        if PERSONAL_DETAIL_KEYS & set(event.details or {}):
            event.details = {key: ("(erased)" if key in PERSONAL_DETAIL_KEYS else value)
                             for key, value in event.details.items()}
    locked.status = AccountStatus.DELETED
    locked.is_admin = False
    locked.totp_secret_encrypted = None
    locked.deletion_due_at = None
    locked.profile_updated_at = now
    audit.record("account.erased", actor, account_id, reason="deletion", **removed)
    return removed


def due_deletions(now: datetime | None = None, limit: int = 100) -> list[str]:
    return list(db.session.scalars(
        select(Account.id)
        .where(Account.deletion_due_at.is_not(None), Account.deletion_due_at <= (now or utcnow()),
               Account.status != AccountStatus.DELETED)
        .order_by(Account.deletion_due_at)
        .limit(limit)
    ))


def execute_due_deletions(now: datetime | None = None) -> int:
    """Erases every account whose grace period has ended; returns how many. One that fails is
    logged and left for the next round: it never stops the others, nor the worker's event
    delivery that runs after it."""
    erased = 0
    for account_id in due_deletions(now):
        account = db.session.get(Account, account_id)
        if account is None or account.status != AccountStatus.ACTIVE:
            continue
        try:
            erase_account(account, Actor.system("deletion-worker"))
        except Exception:  # noqa: BLE001 - logged; retried next round
            db.session.rollback()
            log.exception("erasing account %s failed", account_id)
            continue
        erased += 1
    return erased


def pending_deletions() -> list[Account]:
    return list(db.session.scalars(
        select(Account).where(Account.deletion_due_at.is_not(None),
                              Account.status == AccountStatus.ACTIVE)
        .order_by(Account.deletion_due_at)
    ))


def _active(account_id: str) -> Account:
    locked = lock_accounts(account_id).get(account_id)
    if locked is None or not locked.is_active:
        raise DeletionRefused("not_active", "the account is not active")
    return locked
