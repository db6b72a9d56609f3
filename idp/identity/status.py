"""Disabling and enabling an account: one function each, called by the admin UI and the
management API alike, one transaction each with its audit event and its account event.

And the one rule of who may hold tokens (`may_hold_tokens`): every grant of the token endpoint,
userinfo, introspection and the bearer APIs ask it. An account pending deletion may still sign
in on the website, where the only way on is to cancel the deletion first (the account centre's
detour); it gets no token anywhere until then.

Disabling signs the account out everywhere (`sign_out.sign_out_everywhere`: every IdP session,
refresh family and access token ends; relying parties with a back-channel logout URI hear of it).
Enabling lets the account sign in again; old tokens stay dead.
"""

from __future__ import annotations

from collections.abc import Callable

from idp.identity import account_events, audit
from idp.identity.accounts import IdentityError
from idp.identity.audit import Actor
from idp.identity.hooks import announce_account_event
from idp.identity.links import AccountUnavailable
from idp.identity.models import Account, AccountStatus
from idp.identity.sign_out import sign_out_everywhere
from idp.identity.transactions import lock_accounts, run_in_transaction


class StatusRefused(IdentityError):
    """The account is not in the state the change starts from."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class DeletionPending(AccountUnavailable):
    """The account's erasure is scheduled (`identity.deletion`): it holds no token until the
    user cancels the deletion on the website."""


def may_hold_tokens(account: Account | None) -> bool:
    """Active (not disabled, merged away or erased) and no deletion pending. No query: the
    caller has the row."""
    return account is not None and account.is_active and account.deletion_due_at is None


def check_may_hold_tokens(account: Account | None) -> Account:
    """`account`, or AccountUnavailable (DeletionPending when its erasure is scheduled)."""
    if account is not None and account.is_active and account.deletion_due_at is not None:
        raise DeletionPending("the account is pending deletion")
    if account is None or not may_hold_tokens(account):
        raise AccountUnavailable("the account is not active")
    return account


def disable_account(account: Account, actor: Actor, reason: str = "disabled") -> Account:
    def sign_out(locked: Account) -> None:
        # Sessions, refresh families and access tokens end, relying parties hear of it
        # (back-channel logout): enabling the account later revives none of them.
        sign_out_everywhere(locked, actor, reason=reason)

    return _change_status(
        account, actor, reason, AccountStatus.ACTIVE, AccountStatus.DISABLED,
        StatusRefused("not_active", "only an active account can be disabled"),
        "account.disable", account_events.ACCOUNT_DISABLED, then=sign_out,
    )


def enable_account(account: Account, actor: Actor, reason: str = "enabled") -> Account:
    return _change_status(
        account, actor, reason, AccountStatus.DISABLED, AccountStatus.ACTIVE,
        StatusRefused("not_disabled", "only a disabled account can be enabled"),
        "account.enable", account_events.ACCOUNT_ENABLED,
    )


def _change_status(
    account: Account, actor: Actor, reason: str, before: str, after: str,
    refusal: StatusRefused, audit_action: str, event: str,
    then: Callable[[Account], None] | None = None,
) -> Account:
    """In one transaction: the account, locked, goes from status `before` to `after` (`refusal`
    when it is not in `before`), `then` runs, the change is audited and its account event
    announced."""
    account_id = account.id

    def work() -> Account:
        locked = lock_accounts(account_id).get(account_id)
        if locked is None or locked.status != before:
            raise refusal
        locked.status = after
        if then is not None:
            then(locked)
        audit.record(audit_action, actor, locked.id, reason=reason)
        announce_account_event(event, locked.id, actor)
        return locked

    return run_in_transaction(work)
