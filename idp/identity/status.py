"""Disabling and enabling an account: one function each, called by the admin UI and the
management API alike, one transaction each with its audit event and its account event.

Disabling ends every IdP session (relying parties with a back-channel logout URI hear of it) and
kills every access token issued so far (`tokens_valid_after`); refresh tokens are refused while
the account is not active. Enabling lets the account sign in again; old tokens stay dead.
"""

from __future__ import annotations

from idp.accounts.sessions import end_sessions_of
from idp.events import sets
from idp.events.outbox import emit
from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.models import Account, AccountStatus
from idp.identity.service import IdentityError
from idp.identity.transactions import lock_accounts, run_in_transaction
from idp.models_base import utcnow


class StatusRefused(IdentityError):
    """The account is not in the state the change starts from."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def disable_account(account: Account, actor: Actor, reason: str = "disabled") -> Account:
    account_id = account.id

    def work() -> Account:
        locked = lock_accounts(account_id).get(account_id)
        if locked is None or locked.status != AccountStatus.ACTIVE:
            raise StatusRefused("not_active", "only an active account can be disabled")
        now = utcnow()
        locked.status = AccountStatus.DISABLED
        locked.tokens_valid_after = now
        end_sessions_of(locked.id, now)
        audit.record("account.disable", actor, locked.id, reason=reason)
        emit(sets.ACCOUNT_DISABLED, locked.id, actor)
        return locked

    return run_in_transaction(work)


def enable_account(account: Account, actor: Actor, reason: str = "enabled") -> Account:
    account_id = account.id

    def work() -> Account:
        locked = lock_accounts(account_id).get(account_id)
        if locked is None or locked.status != AccountStatus.DISABLED:
            raise StatusRefused("not_disabled", "only a disabled account can be enabled")
        locked.status = AccountStatus.ACTIVE
        audit.record("account.enable", actor, locked.id, reason=reason)
        emit(sets.ACCOUNT_ENABLED, locked.id, actor)
        return locked

    return run_in_transaction(work)
