"""Signing an account out everywhere: the one engine function for "whatever was signed in as
this account is over" (a password reset, an admin disabling it).

In the caller's transaction: every IdP session ends (and the relying parties with a back-channel
logout URI hear of it, Back-Channel Logout 1.0 §2.5), every refresh-token family is revoked,
unused codes expire, and access tokens issued until now fail validation (`tokens_valid_after`;
see `idp.oidc.tokens.access_token_revoked` for the one-second tie).
"""

from __future__ import annotations

from idp.identity import audit
from idp.identity.audit import Actor
from idp.identity.merge import end_credentials
from idp.identity.models import Account
from idp.models_base import utcnow


def sign_out_everywhere(account: Account, actor: Actor, reason: str) -> dict[str, int]:
    """Ends every credential of the account; the caller commits. Returns what was ended."""
    now = utcnow()
    account.tokens_valid_after = now
    ended = end_credentials(account, now)
    audit.record("account.signed_out_everywhere", actor, account.id, reason=reason, **ended)
    return ended
