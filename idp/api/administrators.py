"""No management API scope reaches an administrator's ways in (issue 23 item 3). Linking,
unlinking and merging change what signs in to an account, and an administrator's account signs
in to the admin UI: a service that could change it could make itself an administrator. Those
changes are made by administrators, in the admin UI."""

from __future__ import annotations

from idp.api.problems import ApiProblem
from idp.identity.models import Account


def refuse_administrators(*accounts: Account | None) -> None:
    """A 403 problem when any of `accounts` is an administrator's."""
    if any(account is not None and account.is_admin for account in accounts):
        raise ApiProblem(
            403, "administrator_account",
            "an administrator's ways to sign in change in the admin UI only, never through the API",
        )
