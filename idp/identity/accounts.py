"""Accounts and the identities they hold — finding, creating, linking — and the profile claims
written to them: the only code that creates accounts or attaches identities.

Merging, undoing, unlinking and moving live in `merge.py` and `links.py` beside this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from idp.extensions import db
from idp.identity import account_events, audit
from idp.identity.audit import Actor
from idp.identity.catalogue import check_write
from idp.identity.hooks import announce_account_event, announce_profile_update
from idp.identity.models import (
    Account,
    AccountAlias,
    AccountStatus,
    Identity,
    IdentityKind,
    ProfileClaim,
)
from idp.models_base import utcnow


class IdentityError(Exception):
    """Base of the identity engine's refusals."""


class IdentityTaken(IdentityError):
    """The verified identity already belongs to another account."""

    def __init__(self, identity: Identity):
        super().__init__(f"{identity.kind} already belongs to another account")
        self.identity = identity


def resolve_account(sub: str) -> Account | None:
    """An account by `sub`, following aliases left by merges to the survivor."""
    account = db.session.get(Account, sub)
    if account is None:
        alias = db.session.get(AccountAlias, sub)
        account = db.session.get(Account, alias.account_id) if alias else None
    seen = 0
    while account is not None and account.status == AccountStatus.MERGED and seen < 16:
        target = account.merged_into_id
        account = db.session.get(Account, target) if target else None
        seen += 1
    return account


def merged_account_ids(account: Account) -> list[str]:
    """The account and the accounts merged into it, at any depth (their `sub`s are the
    account's aliases): the same person's records. One query per level of merges."""
    found = [account.id]
    level = [account.id]
    while level:
        level = [found_id for found_id in db.session.scalars(
            select(Account.id).where(Account.merged_into_id.in_(level),
                                     Account.status == AccountStatus.MERGED)
        ) if found_id not in found]
        found.extend(level)
    return found


def find_identity(kind: str, value: str, namespace: str = "") -> Identity | None:
    """The verified identity (the one that proves who someone is) of that kind and value."""
    return db.session.scalars(
        select(Identity).where(
            Identity.value_is(value, kind),
            Identity.namespace == namespace,
            Identity.verified.is_(True),
        )
    ).first()


def find_account(kind: str, value: str, namespace: str = "") -> Account | None:
    identity = find_identity(kind, value, namespace)
    return identity.account if identity else None


def create_account(actor: Actor, channel: str, *, is_admin: bool = False) -> Account:
    account = Account(created_via=channel, is_admin=is_admin, created_at=utcnow())
    db.session.add(account)
    db.session.flush()
    audit.record("account.create", actor, account.id, reason=f"first sign-in via {channel}")
    announce_account_event(account_events.ACCOUNT_CREATED, account.id, actor, channel=channel)
    return account


def link_identity(
    account: Account,
    kind: str,
    value: str,
    actor: Actor,
    *,
    namespace: str = "",
    verified: bool,
    proof: str | None = None,
    secret_hash: str | None = None,
) -> Identity:
    """Attach an identity. Refuses a verified identity held by another account (merging is a
    separate, explicit decision); re-linking one the account already holds is a no-op."""
    if kind not in IdentityKind.ALL:
        raise ValueError(f"unknown identity kind {kind!r}")
    if verified:
        existing = find_identity(kind, value, namespace)
        if existing is not None:
            if existing.account_id != account.id:
                raise IdentityTaken(existing)
            return existing
    identity = Identity(
        account_id=account.id,
        kind=kind,
        namespace=namespace,
        value=value,
        verified=verified,
        verified_by=proof if verified else None,
        secret_hash=secret_hash,
        created_at=utcnow(),
    )
    db.session.add(identity)
    db.session.flush()
    if kind != IdentityKind.PASSWORD:
        account.profile_updated_at = utcnow()  # phone, email and WeChat ids are served claims
    audit.record(
        "identity.link",
        actor,
        account.id,
        reason=proof,
        kind=kind,
        namespace=namespace,
        value=_display_value(kind, value),
        verified=verified,
    )
    emit_identity_change(account_events.IDENTITY_LINKED, account, identity, actor)
    return identity


def emit_identity_change(
    event_type: str, account: Account, identity: Identity, actor: Actor
) -> None:
    """identity-linked / identity-unlinked name the kind (and appid), never the value; a
    verified phone coming or going is also `phone-changed`."""
    details = {"kind": identity.kind, "namespace": identity.namespace,
               "verified": bool(identity.verified)}
    announce_account_event(event_type, account.id, actor, details=details)
    if identity.kind == IdentityKind.PHONE and identity.verified:
        announce_account_event(account_events.PHONE_CHANGED, account.id, actor)


def identities_of(account: Account, kind: str | None = None) -> list[Identity]:
    query = select(Identity).where(Identity.account_id == account.id).order_by(Identity.id)
    if kind:
        query = query.where(Identity.kind == kind)
    return list(db.session.scalars(query))


def touch_identity(identity: Identity, when: datetime | None = None) -> None:
    identity.last_used_at = when or utcnow()


def set_claim(
    account: Account, name: str, value: str | None, source: str, actor: Actor | None = None
) -> bool:
    """Store what `source` says of a claim; returns whether anything changed. A change queues
    `profile-updated` (one per account and transaction, naming every claim that changed); the
    actor is the user for their own edits, else the system that reported it, unless given."""
    row = db.session.scalars(
        select(ProfileClaim).where(
            ProfileClaim.account_id == account.id,
            ProfileClaim.name == name,
            ProfileClaim.source == source,
        )
    ).first()
    if not value:
        if row is None:
            return False
        db.session.delete(row)
    elif row is None:
        db.session.add(
            ProfileClaim(account_id=account.id, name=name, source=source, value=value)
        )
    elif row.value == value:
        return False
    else:
        row.value = value
        row.updated_at = utcnow()
    account.profile_updated_at = utcnow()
    if actor is None:
        actor = Actor.user(account.id) if source == "user" else Actor.system(source)
    announce_profile_update(account.id, actor, [name])
    return True


def _display_value(kind: str, value: str) -> str:
    """What the audit log keeps of an identity value: credentials are never written out."""
    return "(credential)" if kind == IdentityKind.PASSWORD else value


def write_claim(
    account: Account, name: str, value: Any, actor: Actor, writer: str | None = None
) -> bool:
    """Stores what a person or system says of a declared claim, as `writer` (user, admin, api;
    by default the actor's type) and with that source, after the catalogue's checks
    (`ClaimRefused`); audited as the actor; the caller commits. The served value follows the
    claim's conflict rule, so a lower-priority write is kept but may not be served."""
    writer = writer or actor.type
    stored = check_write(name, value, writer)
    changed = set_claim(account, name, stored, writer, actor if writer == "api" else None)
    if changed:
        audit.record("claim_written", actor, account.id, claim=name, cleared=stored is None)
    return changed
