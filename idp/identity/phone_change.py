"""Changing an account's phone number (the account centre): the new number, proved by an SMS
code, replaces every phone the account held, so the old number stops identifying it.

One transaction, retried when it loses a race (`transactions.py`). A number that another account
holds verified is refused (PhoneTaken), never merged here: a change of number is not the place
to discover that two accounts are one person; signing in with that number and binding there is,
with the merge rules and their preview.
"""

from __future__ import annotations

from idp.extensions import db
from idp.identity import audit
from idp.identity.accounts import IdentityError, find_identity, identities_of, link_identity
from idp.identity.audit import Actor
from idp.identity.models import Account, IdentityKind
from idp.identity.rules import ProofMethod
from idp.identity.transactions import StaleState, lock_accounts, run_in_transaction
from idp.models_base import utcnow


class PhoneTaken(IdentityError):
    """Another account holds that number verified."""


class SamePhone(IdentityError):
    """The account already holds that number."""


def change_phone(account: Account, new_phone: str, actor: Actor) -> Account:
    """`new_phone` (E.164) was just proved by an SMS code sent to it."""
    account_id = account.id

    def work() -> Account:
        locked = lock_accounts(account_id)[account_id]
        holder = find_identity(IdentityKind.PHONE, new_phone)
        if holder is not None:
            if holder.account_id != account_id:
                raise PhoneTaken("that number belongs to another account")
            raise SamePhone("the account already holds that number")
        old = identities_of(locked, IdentityKind.PHONE)
        for identity in old:
            db.session.delete(identity)
        db.session.flush()
        try:
            link_identity(locked, IdentityKind.PHONE, new_phone, actor, verified=True,
                          proof=ProofMethod.SMS)
        except IdentityError as taken:
            raise StaleState() from taken  # bound elsewhere after we looked: look again
        locked.profile_updated_at = utcnow()
        audit.record("phone.change", actor, account_id, reason=ProofMethod.SMS,
                     old=[identity.value for identity in old], new=new_phone)
        return locked

    return run_in_transaction(work, attempts=8)
