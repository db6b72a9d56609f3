"""The account events the engine announces (`idp.identity.hooks.announce_account_event`): their
names only. How they are signed and delivered is `idp.events`' business (`sets.py`, `outbox.py`),
which sits above the engine and registers itself as the listener."""

from __future__ import annotations

ACCOUNT_CREATED = "account-created"
IDENTITY_LINKED = "identity-linked"
IDENTITY_UNLINKED = "identity-unlinked"
PHONE_CHANGED = "phone-changed"
PROFILE_UPDATED = "profile-updated"
ACCOUNT_DISABLED = "account-disabled"
ACCOUNT_ENABLED = "account-enabled"
ACCOUNT_DELETION_SCHEDULED = "account-deletion-scheduled"
ACCOUNT_DELETED = "account-deleted"
ACCOUNT_MERGED = "account-merged"
ACCOUNT_UNMERGED = "account-unmerged"
# The person withdrew their consent to one client (the account centre): told to that client only.
CONSENT_REVOKED = "consent-revoked"
ACCOUNT_EVENT_TYPES = (
    ACCOUNT_CREATED,
    IDENTITY_LINKED,
    IDENTITY_UNLINKED,
    PHONE_CHANGED,
    PROFILE_UPDATED,
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    ACCOUNT_DELETION_SCHEDULED,
    ACCOUNT_DELETED,
    ACCOUNT_MERGED,
    ACCOUNT_UNMERGED,
    CONSENT_REVOKED,
)
