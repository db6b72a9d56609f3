"""Disabling and enabling an account: one function each, called by the admin UI and the
management API alike, one transaction each with its audit event and its account event.

Disabling signs the account out everywhere (`sign_out.sign_out_everywhere`: every IdP session,
refresh family and access token ends; relying parties with a back-channel logout URI hear of it).
Enabling lets the account sign in again; old tokens stay dead.
"""

from __future__ import annotations

from idp.identity import account_events, audit
from idp.identity.accounts import IdentityError
from idp.identity.audit import Actor
from idp.identity.hooks import announce_account_event
from idp.identity.models import Account, AccountStatus
from idp.identity.sign_out import sign_out_everywhere
from idp.identity.transactions import lock_accounts, run_in_transaction


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
        locked.status = AccountStatus.DISABLED
        # Sessions, refresh families and access tokens end, relying parties hear of it
        # (back-channel logout): enabling the account later revives none of them.
        sign_out_everywhere(locked, actor, reason=reason)
        audit.record("account.disable", actor, locked.id, reason=reason)
        announce_account_event(account_events.ACCOUNT_DISABLED, locked.id, actor)
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
        announce_account_event(account_events.ACCOUNT_ENABLED, locked.id, actor)
        return locked

    return run_in_transaction(work)
