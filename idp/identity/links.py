"""Linking what an upstream proved to the right account, and unlinking.

The adapters (WeChat, SMS) hand over a normalised, already-proved identity; these functions
decide whether it finds an account, joins one, creates one, or merges two — per `rules.py` —
and each runs as one transaction that is retried when it loses a race (`transactions.py`).
The caller's own pending changes are committed or rolled back with it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Update,
    and_,
    any_,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql

from idp import statements_alone
from idp.extensions import Write, db
from idp.identity import account_events, audit
from idp.identity.accounts import (
    IdentityError,
    IdentityTaken,
    create_account,
    emit_identity_change,
    find_identity,
    identities_of,
    link_identity,
    touch_identity,
)
from idp.identity.audit import Actor
from idp.identity.hooks import announce_account_event
from idp.identity.merge import merge_in_transaction, record_refusal
from idp.identity.models import Account, Identity, IdentityKind, lookup_keys
from idp.identity.rules import (
    MergeRefused,
    MergeRule,
    Proof,
    ProofMethod,
    UnlinkRefused,
    check_unlink,
    choose_survivor,
)
from idp.identity.transactions import StaleState, lock_accounts, run_in_transaction
from idp.models_base import loaded_instance, utcnow

RACE_ATTEMPTS = 8
PHONE_PROOFS = (ProofMethod.SMS, ProofMethod.WECHAT_PHONE)


class AccountUnavailable(IdentityError):
    """The account is disabled (or gone): nothing is linked to it."""


# --- WeChat login --------------------------------------------------------------------------------


def resolve_wechat_identity(
    appid: str, openid: str, unionid: str | None, channel: str, actor: Actor
) -> tuple[Account, bool]:
    """The account of a WeChat user, creating it on first login; returns (account, created).

    - the openid (per appid) or the unionid finds the account; what it lacks is attached, so an
      app that starts returning a unionid attaches it instead of creating a duplicate;
    - when the openid and the unionid belong to two accounts, those merge (rule
      `same_wechat_unionid`: WeChat just said both ids are one user); the older survives;
    - two first logins at once create one account: the second loses on the unique index and,
      retried, finds the first one's.
    The account may be disabled: the caller refuses the login then.
    """
    proof = Proof(
        kind=IdentityKind.WECHAT_UNIONID,
        value=unionid or "",
        method=ProofMethod.WECHAT_LOGIN,
        note=f"reported with openid {openid} of {appid}",
    )
    try:
        return run_in_transaction(
            lambda: _resolve_wechat(appid, openid, unionid, channel, actor, proof),
            attempts=RACE_ATTEMPTS,
        )
    except MergeRefused as refusal:
        parties = [owner for owner in _wechat_owners(appid, openid, unionid) if owner]
        if parties:
            record_refusal(refusal, Actor.rule(MergeRule.SAME_WECHAT_UNIONID), parties[0],
                           parties[-1], MergeRule.SAME_WECHAT_UNIONID, proof)
        raise


@dataclass(frozen=True)
class ReturningWeChatUser:
    """A WeChat user who signed in before and brings nothing new (`returning_wechat_user`)."""

    account: Account
    identity_ids: tuple[int, ...]  # the verified openid (and unionid) that found the account
    also: tuple[Any, ...] = ()  # the values of the caller's `also` columns


def returning_wechat_user(
    appid: str, openid: str, unionid: str | None, also: tuple[ColumnElement[Any], ...] = ()
) -> ReturningWeChatUser | None:
    """The common login, decided in one indexed query (`uq_identity_verified`): the openid of
    this appid and the unionid WeChat reported (if any) are both verified identities of one
    account, so there is nothing to attach, create or merge, and no lock to take. None for
    anything else (a first login, a unionid to attach, two accounts to merge, ids held
    elsewhere): `resolve_wechat_identity` decides those. The account's status is the caller's
    to check, as after `resolve_wechat_identity`. `also`: expressions over the account's row
    that the caller wants from the same round trip (whether it holds a second factor)."""
    wanted = {IdentityKind.WECHAT_OPENID} | ({IdentityKind.WECHAT_UNIONID} if unionid else set())
    dialect = db.engine.dialect.name
    statement = _returning_lookup(dialect, bool(unionid), also)
    values = {"lookup_appid": appid, "lookup_openid": openid,
              # A unionid is personal data: its blind index under every key version (issue 28).
              "lookup_unionid": lookup_keys(IdentityKind.WECHAT_UNIONID, unionid) if unionid
              else [], "lookup_no_namespace": "",
              # Values, not literals: the SQL is then the same text for every login (the driver
              # runs it, prepared, `idp.statements_alone.rows_alone`).
              "lookup_openid_kind": IdentityKind.WECHAT_OPENID,
              "lookup_unionid_kind": IdentityKind.WECHAT_UNIONID}
    if dialect == "postgresql":  # a read alone: no transaction for the login's writes to join
        rows = statements_alone.rows_alone(statement, values)
    else:
        rows = [dict(row) for row in db.session.execute(statement, values).mappings()]
    if {row["identity_kind"] for row in rows} != wanted or len(rows) != len(wanted) or len(
        {row["id"] for row in rows}
    ) != 1:
        return None
    first = rows[0]
    # The account as a detached stand-in holding its row's columns: all a login reads of it.
    account = loaded_instance(Account, {key: first[key] for key in _ACCOUNT_COLUMNS})
    return ReturningWeChatUser(
        account, tuple(row["identity_id"] for row in rows),
        tuple(first[f"also_{index}"] for index in range(len(also))),
    )


_ACCOUNT_COLUMNS = tuple(column.key for column in Account.__table__.columns)


@functools.cache
def _returning_lookup(dialect: str, with_unionid: bool,
                      also: tuple[ColumnElement[Any], ...]) -> Select[Any]:
    """Built once per shape; the ids and kinds are bound parameters (on PostgreSQL the
    unionid's blind indexes an array, `= ANY`, so that the SQL is one text for the driver).
    Openids are stored as they are."""
    matches = [and_(Identity.kind == bindparam("lookup_openid_kind"),
                    Identity.namespace == bindparam("lookup_appid"),
                    Identity.lookup_key == bindparam("lookup_openid"))]
    if with_unionid:
        unionids: Any = (
            Identity.lookup_key == any_(bindparam("lookup_unionid",
                                                  type_=postgresql.ARRAY(Identity.lookup_key.type)))
            if dialect == "postgresql"
            else Identity.lookup_key.in_(bindparam("lookup_unionid", expanding=True))
        )
        matches.append(and_(Identity.kind == bindparam("lookup_unionid_kind"),
                            Identity.namespace == bindparam("lookup_no_namespace"), unionids))
    return (
        select(*Account.__table__.columns, Identity.id.label("identity_id"),
               Identity.kind.label("identity_kind"),
               *(column.label(f"also_{index}") for index, column in enumerate(also)))
        .join(Identity, Identity.account_id == Account.id)
        .where(Identity.verified.is_(True), or_(*matches))
    )


def wechat_identities_used(identity_ids: tuple[int, ...]) -> Write:
    """`touch_identity` of a returning user's WeChat ids, as a Write for a caller that sends
    its writes together (`idp.extensions.execute_together`). Past the ORM, so no cached claims
    are dropped (`idp.caching` watches ORM writes): `last_used_at` only picks among identities
    of one kind, and an account holds one unionid and one openid per appid."""
    dialect = db.session.get_bind().dialect.name
    return _identities_used(dialect), {"used_ids": list(identity_ids), "used_at": utcnow()}


@functools.cache
def _identities_used(dialect: str) -> Update:
    """On PostgreSQL `id = ANY(:ids)`, one SQL text for any number of ids (so the login's
    writes go out through the driver, `idp.extensions.driver_execute`); elsewhere `IN`."""
    table = Identity.__table__
    ids: Any = (
        table.c.id == any_(bindparam("used_ids", type_=postgresql.ARRAY(Integer)))
        if dialect == "postgresql" else table.c.id.in_(bindparam("used_ids", expanding=True))
    )
    return (
        update(table)  # type: ignore[arg-type]
        .where(ids)
        .values(last_used_at=bindparam("used_at"))
    )


def _resolve_wechat(
    appid: str, openid: str, unionid: str | None, channel: str, actor: Actor, proof: Proof
) -> tuple[Account, bool]:
    by_openid = find_identity(IdentityKind.WECHAT_OPENID, openid, appid)
    by_unionid = find_identity(IdentityKind.WECHAT_UNIONID, unionid) if unionid else None
    seen = (_owner(by_openid), _owner(by_unionid))
    if by_openid is None and by_unionid is None:
        account = create_account(actor, channel)
        _link_wechat(account, appid, openid, unionid, actor)
        return account, True
    accounts = lock_accounts(*(owner for owner in seen if owner))
    # Re-read under the lock: a concurrent login or merge may have moved things meanwhile.
    if seen != tuple(_wechat_owners(appid, openid, unionid)):
        raise StaleState()
    openid_owner, unionid_owner = seen
    if openid_owner and unionid_owner and openid_owner != unionid_owner:
        survivor = choose_survivor(accounts[openid_owner], accounts[unionid_owner])
        loser_id = unionid_owner if survivor.id == openid_owner else openid_owner
        merge_in_transaction(
            survivor.id,
            loser_id,
            rule=MergeRule.SAME_WECHAT_UNIONID,
            proof=proof,
            actor=Actor.rule(MergeRule.SAME_WECHAT_UNIONID),
            triggered_by=actor,
        )
        account = survivor
    else:
        account = accounts[openid_owner or unionid_owner or ""]
        if account.is_active:
            _link_wechat(account, appid, openid, unionid, actor)
    for identity in (by_openid, by_unionid):
        if identity is not None:
            touch_identity(identity)
    return account, False


def link_wechat_to_account(
    account: Account, appid: str, openid: str, unionid: str | None, actor: Actor
) -> Account:
    """The "bind an existing account" step of website WeChat login: the user proved the account
    with its password, and WeChat proved the ids. Ids already held elsewhere are refused
    (IdentityTaken) — that is a merge, which only the rules or an admin decide."""
    account_id = account.id

    def work() -> Account:
        locked = lock_accounts(account_id).get(account_id)
        if locked is None or not locked.is_active:
            raise AccountUnavailable("the account is not active")
        _link_wechat_ids(locked, appid, openid, unionid, actor)
        return locked

    return run_in_transaction(work, attempts=RACE_ATTEMPTS)


def _link_wechat(
    account: Account, appid: str, openid: str, unionid: str | None, actor: Actor
) -> None:
    try:
        _link_wechat_ids(account, appid, openid, unionid, actor)
    except IdentityTaken as taken:
        # Committed by a concurrent login after we looked: look again.
        raise StaleState() from taken


def _link_wechat_ids(
    account: Account, appid: str, openid: str, unionid: str | None, actor: Actor
) -> None:
    if unionid:
        _ensure_unionid_fits(account, unionid)
        link_identity(
            account, IdentityKind.WECHAT_UNIONID, unionid, actor,
            verified=True, proof=ProofMethod.WECHAT_LOGIN,
        )
    link_identity(
        account, IdentityKind.WECHAT_OPENID, openid, actor,
        namespace=appid, verified=True, proof=ProofMethod.WECHAT_LOGIN,
    )


def _ensure_unionid_fits(account: Account, unionid: str) -> None:
    """One WeChat user has one unionid: an account holding another one is someone else."""
    for identity in identities_of(account, IdentityKind.WECHAT_UNIONID):
        if identity.value != unionid:
            raise MergeRefused(
                "conflicting_wechat_identities",
                "this account already holds a different unionid",
            )


def _wechat_owners(appid: str, openid: str, unionid: str | None) -> list[str | None]:
    return [
        _owner(find_identity(IdentityKind.WECHAT_OPENID, openid, appid)),
        _owner(find_identity(IdentityKind.WECHAT_UNIONID, unionid) if unionid else None),
    ]


# --- verified phones -----------------------------------------------------------------------------


def bind_verified_phone(
    account: Account, phone_e164: str, proof: str, actor: Actor
) -> tuple[Account, bool]:
    """Links a phone the user just proved (`proof`: "sms" or "wechat_phone") as verified.

    When another account holds that phone verified, the two merge (rule `same_verified_phone`)
    and the older one survives; returns (the account the caller is now, merged?). Two accounts
    binding one phone at once end in one merge: the unique index lets one of them hold it, and
    the other, retried, merges with it. A refusal (MergeRefused) changes nothing.
    """
    if proof not in PHONE_PROOFS:
        raise MergeRefused("proof_method_not_accepted", f"a phone is not proved by {proof!r}")
    account_id = account.id
    evidence = Proof(kind=IdentityKind.PHONE, value=phone_e164, method=proof)
    try:
        return run_in_transaction(
            lambda: _bind_phone(account_id, phone_e164, evidence, actor),
            attempts=RACE_ATTEMPTS,
        )
    except MergeRefused as refusal:
        holder = find_identity(IdentityKind.PHONE, phone_e164)
        if holder is not None and holder.account_id != account_id:
            record_refusal(refusal, Actor.rule(MergeRule.SAME_VERIFIED_PHONE), holder.account_id,
                           account_id, MergeRule.SAME_VERIFIED_PHONE, evidence)
        raise


def _bind_phone(
    account_id: str, phone: str, proof: Proof, actor: Actor
) -> tuple[Account, bool]:
    holder = find_identity(IdentityKind.PHONE, phone)
    holder_id = holder.account_id if holder is not None else None
    accounts = lock_accounts(account_id, *([holder_id] if holder_id else []))
    if _owner(find_identity(IdentityKind.PHONE, phone)) != holder_id:
        raise StaleState()  # bound or moved by someone else meanwhile: look again
    account = accounts.get(account_id)
    if account is None or not account.is_active:
        raise AccountUnavailable("the account is not active")
    if holder_id is None:
        _verify_phone(account, phone, proof, actor)
        return account, False
    if holder_id == account_id:
        assert holder is not None
        touch_identity(holder)
        return account, False
    other = accounts[holder_id]
    survivor = choose_survivor(account, other)
    loser = other if survivor.id == account.id else account
    merge_in_transaction(
        survivor.id,
        loser.id,
        rule=MergeRule.SAME_VERIFIED_PHONE,
        proof=proof,
        actor=Actor.rule(MergeRule.SAME_VERIFIED_PHONE),
        triggered_by=actor,
    )
    return survivor, True


def _verify_phone(account: Account, phone: str, proof: Proof, actor: Actor) -> None:
    """An unverified copy the account typed in earlier becomes verified; else a new identity."""
    typed = db.session.scalars(
        select(Identity).where(
            Identity.account_id == account.id,
            Identity.value_is(phone, IdentityKind.PHONE),
            Identity.verified.is_(False),
        )
    ).first()
    if typed is None:
        try:
            link_identity(
                account, IdentityKind.PHONE, phone, actor, verified=True, proof=proof.method
            )
        except IdentityTaken as taken:
            raise StaleState() from taken
        return
    typed.verified = True
    typed.verified_by = proof.method
    account.profile_updated_at = utcnow()
    db.session.flush()  # the unique index speaks here, inside the retry
    audit.record(
        "identity.verify", actor, account.id, reason=proof.method,
        kind=IdentityKind.PHONE, value=phone,
    )
    announce_account_event(account_events.PHONE_CHANGED, account.id, actor)


# --- unlinking -----------------------------------------------------------------------------------


def unlink_identity(identity: Identity, actor: Actor) -> None:
    """Removes an identity from its account; refused (UnlinkRefused, audited) when it is the
    account's last way to log in."""
    identity_id, account_id = identity.id, identity.account_id
    kind, namespace = identity.kind, identity.namespace
    try:
        run_in_transaction(lambda: _unlink(identity_id, actor), attempts=RACE_ATTEMPTS)
    except UnlinkRefused as refusal:
        _record_unlink_refusal(refusal, actor, account_id, kind, namespace)
        raise


def _record_unlink_refusal(
    refusal: UnlinkRefused, actor: Actor, account_id: str, kind: str, namespace: str
) -> None:
    """The refusal is audited in a transaction of its own (the refused one rolled back)."""
    audit.record(
        "identity.unlink_refused", actor, account_id, reason=refusal.code,
        kind=kind, namespace=namespace,
    )
    db.session.commit()


def _unlink(identity_id: int, actor: Actor) -> None:
    found = db.session.get(Identity, identity_id)
    if found is None:
        raise IdentityError(f"no identity {identity_id}")
    account = lock_accounts(found.account_id)[found.account_id]
    row = db.session.get(Identity, identity_id, populate_existing=True)
    if row is None or row.account_id != account.id:
        raise StaleState()
    check_unlink(row, identities_of(account))
    _remove_identity(account, row, actor)


def _remove_identity(account: Account, row: Identity, actor: Actor) -> None:
    kind, namespace, value = row.kind, row.namespace, row.value
    emit_identity_change(account_events.IDENTITY_UNLINKED, account, row, actor)
    db.session.delete(row)
    db.session.flush()
    if kind != IdentityKind.PASSWORD:
        account.profile_updated_at = utcnow()  # phone, email and WeChat ids are served claims
    audit.record(
        "identity.unlink", actor, account.id, reason="unlink",
        kind=kind, namespace=namespace,
        value="(credential)" if kind == IdentityKind.PASSWORD else value,
    )


# --- moving and operator links -------------------------------------------------------------------


class MoveRefused(IdentityError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def move_identity(identity: Identity, target: Account, actor: Actor) -> Identity:
    """"Link an identity from another account" (an admin's decision): in one transaction the
    identity leaves its account — refused (UnlinkRefused, audited) when it is that account's last
    way to log in — and joins `target` as verified by an admin. Either both happen or neither:
    no compensating step. Raises MoveRefused for a password, the same account, or an inactive
    target. Returns the identity on `target`."""
    identity_id, target_id, source_id = identity.id, target.id, identity.account_id
    kind, namespace = identity.kind, identity.namespace
    try:
        return run_in_transaction(
            lambda: _move(identity_id, target_id, actor), attempts=RACE_ATTEMPTS
        )
    except UnlinkRefused as refusal:
        _record_unlink_refusal(refusal, actor, source_id, kind, namespace)
        raise


def _move(identity_id: int, target_id: str, actor: Actor) -> Identity:
    found = db.session.get(Identity, identity_id)
    if found is None:
        raise IdentityError(f"no identity {identity_id}")
    accounts = lock_accounts(found.account_id, target_id)
    row = db.session.get(Identity, identity_id, populate_existing=True)
    if row is None or row.account_id not in accounts:
        raise StaleState()
    source, target = accounts[row.account_id], accounts.get(target_id)
    if target is None:
        raise MoveRefused("no_such_account", "no such account")
    if source.id == target.id:
        raise MoveRefused("same_account", "the identity already belongs to this account")
    if row.kind == IdentityKind.PASSWORD:
        raise MoveRefused("password", "a password belongs to its account and cannot be moved")
    if not target.is_active:
        raise MoveRefused("target_not_active", "identities are only linked to an active account")
    check_unlink(row, identities_of(source))
    kind, namespace, value = row.kind, row.namespace, row.value
    _remove_identity(source, row, actor)
    linked = link_identity(target, kind, value, actor, namespace=namespace, verified=True,
                           proof=ProofMethod.ADMIN)
    audit.record(
        "admin.identity_move", actor, target.id, reason="moved by an admin",
        kind=kind, namespace=namespace, value=value, moved_from=source.id,
    )
    return linked


def link_to_active_account(
    account: Account, kind: str, value: str, actor: Actor, *, verified: bool,
    proof: str | None = None, check: Callable[[Account], None] | None = None,
) -> Identity:
    """`link_identity` in a transaction of its own, under the account's lock: refused
    (AccountUnavailable) when the account is not active; `check` may refuse the locked account
    too (by raising; the management API keeps administrators out of reach). For a caller outside
    any engine transaction; raises IdentityTaken as `link_identity` does."""
    account_id = account.id

    def work() -> Identity:
        locked = lock_accounts(account_id).get(account_id)
        if locked is None or not locked.is_active:
            raise AccountUnavailable("the account is not active")
        if check is not None:
            check(locked)
        return link_identity(locked, kind, value, actor, verified=verified, proof=proof)

    return run_in_transaction(work, attempts=3)


# --- helpers -------------------------------------------------------------------------------------


def _owner(identity: Identity | None) -> str | None:
    return identity.account_id if identity is not None else None


__all__ = [
    "AccountUnavailable",
    "IdentityTaken",
    "bind_verified_phone",
    "link_wechat_to_account",
    "resolve_wechat_identity",
    "unlink_identity",
]
