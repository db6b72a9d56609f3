"""What the engine announces to the domains above it, which they act on in the same transaction.

The engine owns accounts, identities and IdP sessions. The protocol's state — refresh tokens,
codes, consents, back-channel logout (`idp.oidc`) — and other domains' rows about an account —
second factors, login history (`idp.accounts`) — live above it, and the engine imports neither.
Nor does it import the event outbox (`idp.events`), which signs and delivers what happened to the
relying parties. Instead each of those domains registers, at start-up, what it does when the
engine says "these credentials end", "this account is erased", "these two accounts merge" or
"this happened to the account" — the way Authlib's server is assembled from the grants
registered into it (`server.register_grant`). The hooks are kept per application
(`app.extensions`), so each `create_app` has its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask, current_app

if TYPE_CHECKING:
    from idp.identity.audit import Actor

EXTENSION_KEY = "idp.identity.hooks"


class SessionEnded(Protocol):
    def __call__(self, account_id: str, session_id: str, now: datetime,
                 revoke_tokens: bool) -> None: ...


class CredentialsEnded(Protocol):
    def __call__(self, account_id: str, now: datetime,
                 since: datetime | None) -> dict[str, int]: ...


class AccountEventListener(Protocol):
    def __call__(self, event_type: str, sub: str, actor: Actor, *, channel: str | None = None,
                 details: dict[str, Any] | None = None, accounts: Iterable[str] = (),
                 audience: str | None = None) -> Any: ...


@dataclass(frozen=True)
class MergeHook:
    """One domain's part of a merge: `merge(loser_id, survivor_id)` moves its rows and returns
    what undo needs, kept in the merge's snapshot under `name`; `undo(saved, survivor_id,
    loser_id)` gives them back."""

    name: str
    merge: Callable[[str, str], dict[str, Any]]
    undo: Callable[[dict[str, Any], str, str], None]


@dataclass
class Hooks:
    session_ended: list[SessionEnded] = field(default_factory=list)
    credentials_ended: list[CredentialsEnded] = field(default_factory=list)
    account_erased: list[Callable[[str], dict[str, int]]] = field(default_factory=list)
    accounts_merged: list[MergeHook] = field(default_factory=list)
    # (client_id, account_id, session_id) -> whether the client was told
    client_signed_out: list[Callable[[str, str, str], bool]] = field(default_factory=list)
    account_event: list[AccountEventListener] = field(default_factory=list)
    # (sub, actor, claim names)
    profile_updated: list[Callable[[str, Actor, Iterable[str]], Any]] = field(
        default_factory=list
    )


def hooks_of(app: Flask) -> Hooks:
    return app.extensions.setdefault(EXTENSION_KEY, Hooks())  # type: ignore[no-any-return]


def _hooks() -> Hooks:
    return hooks_of(current_app)


# --- what the engine calls -----------------------------------------------------------------------


def session_ended(account_id: str, session_id: str, now: datetime, revoke_tokens: bool) -> None:
    """An IdP session ended: relying parties hear of it; with `revoke_tokens`, the refresh
    tokens issued in it die."""
    for hook in _hooks().session_ended:
        hook(account_id, session_id, now, revoke_tokens)


def credentials_ended(account_id: str, now: datetime,
                      since: datetime | None = None) -> dict[str, int]:
    """Every credential of the account issued `since` (or ever) ends; returns what ended."""
    ended: dict[str, int] = {}
    for hook in _hooks().credentials_ended:
        ended.update(hook(account_id, now, since))
    return ended


def account_erased(account_id: str) -> dict[str, int]:
    """The account's rows in the other domains go; returns how many per table."""
    removed: dict[str, int] = {}
    for hook in _hooks().account_erased:
        removed.update(hook(account_id))
    return removed


def accounts_merged(loser_id: str, survivor_id: str) -> dict[str, dict[str, Any]]:
    return {hook.name: hook.merge(loser_id, survivor_id) for hook in _hooks().accounts_merged}


def merge_undone(snapshot: dict[str, Any], survivor_id: str, loser_id: str) -> None:
    for hook in _hooks().accounts_merged:
        if hook.name in snapshot:
            hook.undo(snapshot[hook.name], survivor_id, loser_id)


def client_signed_out(client_id: str, account_id: str, session_id: str) -> bool:
    """One application lost the account's session (the user revoked it): whether it was told."""
    return any([hook(client_id, account_id, session_id) for hook in _hooks().client_signed_out])


def announce_account_event(
    event_type: str, sub: str, actor: Actor, *, channel: str | None = None,
    details: dict[str, Any] | None = None, accounts: Iterable[str] = (),
    audience: str | None = None,
) -> None:
    """Something happened to the account (`account_events`), in the caller's transaction.
    `channel`: the door it came through, when the actor does not say; `accounts`: further
    accounts it concerns (a merge's survivor); `audience`: the one client to tell, when the
    event concerns that client alone (a withdrawn consent)."""
    for hook in _hooks().account_event:
        hook(event_type, sub, actor, channel=channel, details=details, accounts=list(accounts),
             audience=audience)


def announce_profile_update(sub: str, actor: Actor, claims: Iterable[str]) -> None:
    """These profile claims of the account changed (names only)."""
    for hook in _hooks().profile_updated:
        hook(sub, actor, list(claims))
