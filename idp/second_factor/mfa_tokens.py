"""The `mfa_token` of a mini-program sign-in that waits for its second factor.

It is what Auth0's MFA API calls the same: an opaque, random value handed out with the
`mfa_required` error and presented once, with the code, to finish the exchange. Here it is:

- random (256 bits) and stored only as a SHA-256 digest: a database dump grants nothing;
- bound to the client it was issued to and to the account whose first factor was proved;
- short-lived (MFA_TOKEN_TTL) and single-use;
- dead after MAX_ATTEMPTS codes, right or wrong: each attempt takes its slot *before* the code is
  checked, in one conditional UPDATE, so concurrent guesses can never get past the count.

It lives in the database, like SMS codes (the closest kin: a short secret with an attempt count):
every IdP process shares it, with or without Redis, and each change is one atomic statement.
Expired rows are purged by retention (`idp.maintenance.retention`).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import update

from idp.crypto import digest as token_digest
from idp.extensions import db, rows_matched
from idp.models_base import utcnow
from idp.second_factor.models import MfaChallenge

MFA_TOKEN_TTL = timedelta(minutes=5)
MAX_ATTEMPTS = 5
MAX_TOKEN_LENGTH = 128


def issue_mfa_token(client_id: str, account_id: str, scope: str, amr: list[str]) -> str:
    """A fresh mfa_token for this client and account, committed at once: it travels in an error
    answer, and the token endpoint rolls back the session of every error."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(
        MfaChallenge(
            token_digest=token_digest(token),
            client_id=client_id,
            account_id=account_id,
            scope=scope,
            amr=list(amr),
            attempts=0,
            created_at=now,
            expires_at=now + MFA_TOKEN_TTL,
        )
    )
    db.session.commit()
    return token


def take_attempt(token: str, client_id: str) -> MfaChallenge | None:
    """Spends one attempt of a live mfa_token of this client, committed at once (a wrong code
    that follows must still count); None when the token is unknown, of another client, expired,
    used, or out of attempts."""
    digest = token_digest(token)
    taken = rows_matched(
        update(MfaChallenge)
        .where(
            MfaChallenge.token_digest == digest,
            MfaChallenge.client_id == client_id,
            MfaChallenge.used_at.is_(None),
            MfaChallenge.expires_at > utcnow(),
            MfaChallenge.attempts < MAX_ATTEMPTS,
        )
        .values(attempts=MfaChallenge.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if taken != 1:
        return None
    return db.session.get(MfaChallenge, digest, populate_existing=True)


def attempts_left(challenge: MfaChallenge) -> int:
    return max(0, MAX_ATTEMPTS - challenge.attempts)


def consume(challenge: MfaChallenge) -> bool:
    """Marks the token used; False when a concurrent request used it first. Uncommitted: it
    commits with the tokens it pays for."""
    used = rows_matched(
        update(MfaChallenge)
        .where(
            MfaChallenge.token_digest == challenge.token_digest,
            MfaChallenge.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(used == 1)
