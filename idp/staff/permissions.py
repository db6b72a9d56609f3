"""The role × action table: what each admin role may do. The README's table is this one.

Least privilege, after issue 27 (等保 2.0 三权分立): `support` helps people (finds accounts,
sees them masked, ends sessions, proposes a merge, unlink or move), `identity` decides on
accounts (merges, undo, unlink, move, disable and enable, claims, erasure), `security` runs the
system (clients, WeChat apps, keys, the data dictionary, revoke-all, admin roles) and `auditor`
reads the trail and the reports, nothing else and nothing unmasked.

Every admin page names one action in `idp.admin.access.ROUTE_ACTIONS`; a page that names none
is refused to everybody, and the route-walking test fails on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Role(StrEnum):
    SUPPORT = "support"
    IDENTITY = "identity"
    SECURITY = "security"
    AUDITOR = "auditor"


SUPPORT, IDENTITY, SECURITY, AUDITOR = Role.SUPPORT, Role.IDENTITY, Role.SECURITY, Role.AUDITOR
EVERY_ROLE = frozenset(Role)

# action -> the roles that may carry it out.
ACTIONS: dict[str, frozenset[Role]] = {
    # Every admin: the second factor, and the dashboard (counts, no personal data).
    "second_factor": EVERY_ROLE,
    "reports.read": EVERY_ROLE,
    # Finding and looking at accounts.
    "accounts.read": frozenset({SUPPORT, IDENTITY}),
    # Helping a person: end one of their sessions or token families, send a reset code.
    # Showing one masked phone or email in full, with a reason (audited, rate-limited).
    "personal_data.reveal": frozenset({SUPPORT, IDENTITY}),
    "sessions.end": frozenset({SUPPORT}),
    "password_reset.send": frozenset({SUPPORT}),
    # A merge, an undo or a move: support and identity propose (after the preview); identity
    # approves another admin's proposal, or carries it out at once where four-eyes is off.
    "merges.propose": frozenset({SUPPORT, IDENTITY}),
    "merges.carry_out": frozenset({IDENTITY}),
    "merges.history": frozenset({SUPPORT, IDENTITY, AUDITOR}),
    "suggestions.review": frozenset({SUPPORT, IDENTITY}),
    "identities.unlink": frozenset({IDENTITY}),
    "accounts.disable": frozenset({IDENTITY}),
    "accounts.claims": frozenset({IDENTITY}),
    "deletions.manage": frozenset({IDENTITY}),
    # Running the system.
    "clients.manage": frozenset({SECURITY}),
    "wechat_apps.manage": frozenset({SECURITY}),
    "keys.manage": frozenset({SECURITY}),
    "data_dictionary.manage": frozenset({SECURITY}),
    "tokens.revoke_all": frozenset({SECURITY}),
    "events.read": frozenset({SECURITY, AUDITOR}),
    "events.retry": frozenset({SECURITY}),
    "admins.manage": frozenset({SECURITY}),
    # The audit trail.
    "audit.read": frozenset({AUDITOR}),
}

# The management API is used by clients, not people: each scope carries one role's duty, and
# only a `security` admin (who manages clients) can give a client a scope.
API_SCOPE_DUTIES: dict[str, Role] = {
    "idp:accounts.read": SUPPORT,
    "idp:sessions": SUPPORT,
    "idp:accounts.write": IDENTITY,
    "idp:merges": IDENTITY,
    "idp:events.read": AUDITOR,
    # No operation of its own: phones and emails unmasked in the answers, as a reveal shows them.
    "idp:accounts.personal_data": SUPPORT,
}


def may(roles: Iterable[str], action: str) -> bool:
    """True when one of `roles` may carry out `action`; an unknown action is nobody's."""
    allowed = ACTIONS.get(action)
    return allowed is not None and any(role in allowed for role in roles)
