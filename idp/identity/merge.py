"""Merging two accounts into one, and undoing it.

A merge is one database transaction (`run_in_transaction`); each step below only adds to it, so
a failure at any step leaves the database exactly as it was. In order:

1. lock both accounts, then check the rules (`rules.check_merge`) on what is current;
2. every identity of the loser moves to the survivor;
3. profile claims: a (claim, source) the survivor lacks moves over; where both know it, the more
   recent value stays on the survivor. The served value is then chosen as always (`claims.py`:
   user > website > wechat, then recency). Replaced and dropped rows go into the snapshot;
4. consents move; where both consented to a client, the survivor's scopes become the union;
5. the loser's credentials die: refresh tokens are revoked, IdP sessions end, unused codes
   expire, and access tokens issued before now fail validation (`tokens_valid_after`, and the
   validator rejects tokens of an account that is not active);
6. the loser becomes `merged` into the survivor, and its `sub` an alias of the survivor;
7. the merge record (with the snapshot that undo needs), the audit events, and one outbox row
   per subscribed client.

Consents live in the protocol's tables (`idp.oidc`), which the engine does not import: they move
through the merge hooks the protocol registers (`hooks.accounts_merged`), inside this same
transaction. The credentials end through `sign_out.end_credentials`, as at every other door.

Undo restores the loser with its own identities, claims, consents and `sub`. Its old tokens and
sessions stay dead (`tokens_valid_after`); the survivor's sessions and refresh tokens created
since the merge are ended as well, because whoever signed in through the loser's identities in
between may be the other person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update

from idp.extensions import db
from idp.identity import account_events, audit, hooks
from idp.identity.accounts import IdentityError, identities_of
from idp.identity.audit import Actor
from idp.identity.hooks import announce_account_event
from idp.identity.models import (
    Account,
    AccountAlias,
    AccountStatus,
    Identity,
    MergeRecord,
    ProfileClaim,
)
from idp.identity.rules import MergeRefused, Proof, check_merge
from idp.identity.sign_out import end_credentials
from idp.identity.transactions import lock_accounts, run_in_transaction
from idp.models_base import utcnow

SNAPSHOT_VERSION = 1


class UndoRefused(IdentityError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# --- the public API ------------------------------------------------------------------------------


def merge_accounts(
    survivor: Account, loser: Account, *, rule: str, proof: Proof, actor: Actor
) -> MergeRecord:
    """Merges `loser` into `survivor` in one transaction, or raises MergeRefused and changes
    nothing (the refusal itself is audited)."""
    survivor_id, loser_id = survivor.id, loser.id
    try:
        return run_in_transaction(
            lambda: merge_in_transaction(
                survivor_id, loser_id, rule=rule, proof=proof, actor=actor
            ),
            attempts=3,
        )
    except MergeRefused as refusal:
        record_refusal(refusal, actor, survivor_id, loser_id, rule, proof)
        raise


def undo_merge(record: MergeRecord, actor: Actor) -> Account:
    """Restores the merged-away account; returns it."""
    record_id, survivor_id, loser_id = record.id, record.survivor_id, record.loser_id
    try:
        return run_in_transaction(lambda: _undo(record_id, actor), attempts=3)
    except UndoRefused as refusal:
        for account_id in (survivor_id, loser_id):
            audit.record("account.unmerge_refused", actor, account_id, reason=refusal.code,
                         merge_id=record_id, message=str(refusal))
        db.session.commit()
        raise


def merge_in_transaction(
    survivor_id: str, loser_id: str, *, rule: str, proof: Proof, actor: Actor,
    triggered_by: Actor | None = None,
) -> MergeRecord:
    """The merge inside the caller's transaction (for `links.py`, which merges while linking)."""
    accounts = lock_accounts(survivor_id, loser_id)
    survivor, loser = accounts.get(survivor_id), accounts.get(loser_id)
    if survivor is None or loser is None:
        raise MergeRefused("no_such_account", "both accounts must exist")
    check_merge(
        survivor, loser, rule, proof, actor, identities_of(survivor), identities_of(loser),
        kept_apart=kept_apart_by_admin(survivor.id, loser.id),
    )
    now = utcnow()
    snapshot: dict[str, Any] = {
        "version": SNAPSHOT_VERSION,
        "identities": move_identities(loser, survivor),
        "claims": merge_claims(loser, survivor),
        **merge_protocol_state(loser, survivor),  # "consents", from idp.oidc
        "credentials": end_credentials(loser, now),
        "profile_updated_at": {
            "survivor": survivor.profile_updated_at.isoformat(),
            "loser": loser.profile_updated_at.isoformat(),
        },
        "loser_tokens_valid_after": _iso(loser.tokens_valid_after),
    }
    loser.status = AccountStatus.MERGED
    loser.merged_into_id = survivor.id
    loser.tokens_valid_after = now
    survivor.profile_updated_at = now
    record = MergeRecord(
        survivor_id=survivor.id,
        loser_id=loser.id,
        rule=rule,
        actor=str(actor),
        snapshot=snapshot,
        created_at=now,
    )
    db.session.add(record)
    db.session.flush()
    db.session.add(
        AccountAlias(alias_sub=loser.id, account_id=survivor.id, merge_id=record.id, created_at=now)
    )
    details = {
        "merge_id": record.id,
        "rule": rule,
        "proof": proof.as_dict(),
        "survivor": survivor.id,
        "merged": loser.id,
        "moved_identities": len(snapshot["identities"]),
        "revoked_refresh_tokens": snapshot["credentials"]["refresh_tokens"],
        "ended_sessions": snapshot["credentials"]["sessions"],
    }
    if triggered_by is not None:
        details["triggered_by"] = str(triggered_by)
    audit.record("account.merge", actor, survivor.id, reason=rule, **details)
    audit.record("account.merged_away", actor, loser.id, reason=rule, **details)
    announce_account_event(
        account_events.ACCOUNT_MERGED, loser.id, actor, accounts=[survivor.id],
        details={"merged_sub": loser.id, "surviving_sub": survivor.id},
    )
    db.session.flush()
    return record


def kept_apart_by_admin(first_id: str, second_id: str) -> bool:
    """An admin undid a merge of these two accounts, either way round (rules.py, rule 8)."""
    pair = or_(
        and_(MergeRecord.survivor_id == first_id, MergeRecord.loser_id == second_id),
        and_(MergeRecord.survivor_id == second_id, MergeRecord.loser_id == first_id),
    )
    undone = select(MergeRecord.id).where(pair, MergeRecord.undone_at.is_not(None)).limit(1)
    return db.session.scalar(undone) is not None


def record_refusal(
    refusal: MergeRefused, actor: Actor, survivor_id: str, loser_id: str, rule: str,
    proof: Proof,
) -> None:
    """Refusals are audited in a transaction of their own (the refused one was rolled back)."""
    for account_id in dict.fromkeys((survivor_id, loser_id)):
        audit.record(
            "account.merge_refused",
            actor,
            account_id,
            reason=refusal.code,
            rule=rule,
            proof=proof.as_dict(),
            survivor=survivor_id,
            merged=loser_id,
            message=str(refusal),
        )
    db.session.commit()


# --- the steps of a merge -----------------------------------------------------------------------


def move_identities(loser: Account, survivor: Account) -> list[int]:
    ids = list(db.session.scalars(select(Identity.id).where(Identity.account_id == loser.id)))
    if ids:
        db.session.execute(
            update(Identity)
            .where(Identity.id.in_(ids))
            .values(account_id=survivor.id)
            .execution_options(synchronize_session="fetch")
        )
    return ids


ClaimKey = tuple[str, str]  # (claim, source)


def claims_after_merge(
    survivor_rows: dict[ClaimKey, ProfileClaim], loser_rows: dict[ClaimKey, ProfileClaim]
) -> dict[ClaimKey, tuple[ProfileClaim, str]]:
    """The merge's rule for profile values: {(claim, source): (the row whose value the merged
    account keeps, "survivor" or "loser")}. A (claim, source) only the loser knows moves over;
    where both know it, the more recent value stays. `merge_claims` applies it; the admin's
    merge preview shows it."""
    kept = {key: (row, "survivor") for key, row in survivor_rows.items()}
    for key, row in loser_rows.items():
        mine = kept.get(key)
        if mine is None or (row.updated_at > mine[0].updated_at and row.value != mine[0].value):
            kept[key] = (row, "loser")
    return kept


def claim_rows(account: Account) -> dict[ClaimKey, ProfileClaim]:
    rows = db.session.scalars(
        select(ProfileClaim).where(ProfileClaim.account_id == account.id).order_by(ProfileClaim.id)
    )
    return {(row.name, row.source): row for row in rows}


def merge_claims(loser: Account, survivor: Account) -> dict[str, Any]:
    mine, theirs = claim_rows(survivor), claim_rows(loser)
    moved: list[int] = []
    dropped: list[dict[str, Any]] = []  # the loser's rows that lost to the survivor's
    replaced: list[dict[str, Any]] = []  # the survivor's rows that took the loser's value
    outcome = claims_after_merge(mine, theirs)
    for key, row in theirs.items():
        winner, side = outcome[key]
        kept = mine.get(key)
        if kept is None:
            row.account_id = survivor.id
            moved.append(row.id)
            continue
        dropped.append(_claim_row(row))
        if side == "loser":
            replaced.append({**_claim_row(kept), "merged_value": row.value})
            kept.value = winner.value
            kept.updated_at = winner.updated_at
        db.session.delete(row)
    db.session.flush()
    return {"moved": moved, "dropped": dropped, "replaced": replaced}


def merge_protocol_state(loser: Account, survivor: Account) -> dict[str, Any]:
    """The other domains' part of the merge (consents), kept in the snapshot for undo."""
    return hooks.accounts_merged(loser.id, survivor.id)


# --- undo ----------------------------------------------------------------------------------------


def _undo(record_id: int, actor: Actor) -> Account:
    found = db.session.get(MergeRecord, record_id)
    if found is None:
        raise UndoRefused("no_such_merge", f"no merge {record_id}")
    accounts = lock_accounts(found.survivor_id, found.loser_id)
    record = db.session.get(MergeRecord, record_id, populate_existing=True)
    assert record is not None
    survivor, loser = accounts[record.survivor_id], accounts[record.loser_id]
    _check_undo(record, survivor, loser)
    snapshot = record.snapshot
    now = utcnow()
    db.session.execute(
        update(Identity)
        .where(Identity.id.in_(snapshot["identities"]), Identity.account_id == survivor.id)
        .values(account_id=loser.id)
        .execution_options(synchronize_session="fetch")
    )
    _restore_claims(snapshot["claims"], survivor, loser)
    _restore_protocol_state(snapshot, survivor, loser)
    ended = end_credentials(survivor, now, since=record.created_at)
    loser.status = AccountStatus.ACTIVE
    loser.merged_into_id = None
    survivor.tokens_valid_after = now
    survivor.profile_updated_at = now
    loser.profile_updated_at = now
    db.session.execute(delete(AccountAlias).where(AccountAlias.alias_sub == loser.id))
    record.undone_at = now
    details = {
        "merge_id": record.id,
        "survivor": survivor.id,
        "restored": loser.id,
        "restored_identities": len(snapshot["identities"]),
        "ended_survivor_sessions": ended["sessions"],
        "revoked_survivor_refresh_tokens": ended["refresh_tokens"],
    }
    audit.record("account.unmerge", actor, survivor.id, reason="undo", **details)
    audit.record("account.restored", actor, loser.id, reason="undo", **details)
    announce_account_event(
        account_events.ACCOUNT_UNMERGED, loser.id, actor, accounts=[survivor.id],
        details={"merged_sub": loser.id, "surviving_sub": survivor.id},
    )
    db.session.flush()
    return loser


def _check_undo(record: MergeRecord, survivor: Account, loser: Account) -> None:
    if record.undone_at is not None:
        raise UndoRefused("already_undone", "this merge was undone already")
    if loser.status != AccountStatus.MERGED or loser.merged_into_id != survivor.id:
        raise UndoRefused(
            "loser_changed", "the merged account is no longer merged into the survivor"
        )
    if survivor.status == AccountStatus.MERGED:
        raise UndoRefused(
            "survivor_merged_since", "the survivor was merged since: undo that merge first"
        )
    if (record.snapshot or {}).get("version") != SNAPSHOT_VERSION:
        raise UndoRefused("unknown_snapshot", "this merge record cannot be undone automatically")


def _restore_claims(claims: dict[str, Any], survivor: Account, loser: Account) -> None:
    db.session.execute(
        update(ProfileClaim)
        .where(ProfileClaim.id.in_(claims["moved"]), ProfileClaim.account_id == survivor.id)
        .values(account_id=loser.id)
        .execution_options(synchronize_session="fetch")
    )
    for row in claims["dropped"]:
        db.session.add(
            ProfileClaim(
                account_id=loser.id,
                name=row["name"],
                source=row["source"],
                value=row["value"],
                updated_at=datetime.fromisoformat(row["updated_at"]),
            )
        )
    for row in claims["replaced"]:
        current = _claim(survivor, row["name"], row["source"])
        if current is not None and current.value == row["merged_value"]:
            current.value = row["value"]  # untouched since the merge: give back the old value
            current.updated_at = datetime.fromisoformat(row["updated_at"])


def _restore_protocol_state(snapshot: dict[str, Any], survivor: Account, loser: Account) -> None:
    hooks.merge_undone(snapshot, survivor.id, loser.id)


# --- helpers -------------------------------------------------------------------------------------


def _claim(account: Account, name: str, source: str) -> ProfileClaim | None:
    return db.session.scalars(
        select(ProfileClaim).where(
            ProfileClaim.account_id == account.id,
            ProfileClaim.name == name,
            ProfileClaim.source == source,
        )
    ).first()


def _claim_row(row: ProfileClaim) -> dict[str, Any]:
    return {
        "name": row.name,
        "source": row.source,
        "value": row.value,
        "updated_at": row.updated_at.isoformat(),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
