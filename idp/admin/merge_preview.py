"""What a merge would do, worked out before it is done, for the side-by-side preview.

It reads what `idp.identity.merge` will act on and explains it with the engine's own rules
(`rules.check_merge`, the conflict rule of `catalogue.py`); it changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from idp.admin.account_actions import live_refresh_tokens
from idp.extensions import db
from idp.identity.accounts import identities_of
from idp.identity.audit import Actor
from idp.identity.catalogue import rank
from idp.identity.models import Account, Identity, IdentityKind, LoginSession, ProfileClaim
from idp.identity.rules import MergeRefused, MergeRule, Proof, check_merge
from idp.identity.sign_out import live_sessions
from idp.oidc.models import Consent, RefreshToken


@dataclass
class ClaimOutcome:
    name: str
    survivor: ProfileClaim | None  # what each side serves today
    loser: ProfileClaim | None
    winner: ProfileClaim | None  # what the merged account will serve
    winner_side: str  # "survivor" or "loser"
    why: str  # a message id, translated by the template


@dataclass
class MergePreview:
    survivor: Account
    loser: Account
    survivor_identities: list[Identity]
    moving_identities: list[Identity]
    claims: list[ClaimOutcome]
    dying_refresh_tokens: list[RefreshToken]
    ending_sessions: list[LoginSession]
    moving_consents: list[Consent]
    united_consents: list[Consent]
    refusal: MergeRefused | None = None
    warnings: list[str] = field(default_factory=list)


def preview_merge(survivor: Account, loser: Account, actor: Actor) -> MergePreview:
    mine, theirs = identities_of(survivor), identities_of(loser)
    refusal = None
    try:
        check_merge(survivor, loser, MergeRule.ADMIN_DECISION, Proof.admin("preview"), actor,
                    mine, theirs)
    except MergeRefused as refused:
        refusal = refused
    survivor_consents = {c.client_id for c in _consents(survivor)}
    loser_consents = _consents(loser)
    return MergePreview(
        survivor=survivor,
        loser=loser,
        survivor_identities=mine,
        moving_identities=theirs,
        claims=claim_outcomes(survivor, loser),
        dying_refresh_tokens=live_refresh_tokens(loser),
        ending_sessions=live_sessions(loser),
        moving_consents=[c for c in loser_consents if c.client_id not in survivor_consents],
        united_consents=[c for c in loser_consents if c.client_id in survivor_consents],
        refusal=refusal,
        warnings=_warnings(mine, theirs),
    )


def claim_outcomes(survivor: Account, loser: Account) -> list[ClaimOutcome]:
    """As `merge.merge_claims` does it: a (claim, source) only the loser knows moves over; where
    both know it the more recent value stays; then the served value is the best source
    (the claim's conflict rule), the most recent among equals."""
    survivor_rows, loser_rows = _claims(survivor), _claims(loser)
    merged: dict[tuple[str, str], tuple[ProfileClaim, str]] = {
        key: (row, "survivor") for key, row in survivor_rows.items()
    }
    for key, row in loser_rows.items():
        kept = merged.get(key)
        if kept is None or row.updated_at > kept[0].updated_at:
            merged[key] = (row, "loser")
    outcomes = []
    for name in sorted({name for name, _source in merged}):
        candidates = [(row, side) for (claim, _s), (row, side) in merged.items() if claim == name]
        winner, side = min(candidates, key=lambda c: _rank(c[0]))
        outcomes.append(
            ClaimOutcome(
                name=name,
                survivor=_served(survivor_rows, name),
                loser=_served(loser_rows, name),
                winner=winner,
                winner_side=side,
                why=_why(winner, candidates),
            )
        )
    return outcomes


def _why(winner: ProfileClaim, candidates: list[tuple[ProfileClaim, str]]) -> str:
    others = [row for row, _side in candidates if row is not winner]
    if not others:
        return "only_value"
    if all(row.value == winner.value for row in others):
        return "same_value"
    if any(_priority(row) == _priority(winner) for row in others):
        return "more_recent"
    return "better_source"


def _rank(row: ProfileClaim) -> tuple[int, float]:
    return (_priority(row), -row.updated_at.timestamp())


def _priority(row: ProfileClaim) -> int:
    return rank(row.name, row.source)


def _served(rows: dict[tuple[str, str], ProfileClaim], name: str) -> ProfileClaim | None:
    candidates = [row for (claim, _source), row in rows.items() if claim == name]
    return min(candidates, key=_rank) if candidates else None


def _claims(account: Account) -> dict[tuple[str, str], ProfileClaim]:
    rows = db.session.scalars(select(ProfileClaim).where(ProfileClaim.account_id == account.id))
    return {(row.name, row.source): row for row in rows}


def _consents(account: Account) -> list[Consent]:
    return list(db.session.scalars(select(Consent).where(Consent.account_id == account.id)))


def _warnings(mine: list[Identity], theirs: list[Identity]) -> list[str]:
    """Two different WeChat users on the two sides: the rules would never merge these
    automatically; an admin may, but should know."""
    def ids(identities: list[Identity], kind: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for identity in identities:
            if identity.kind == kind and identity.verified:
                found.setdefault(identity.namespace, set()).add(identity.value)
        return found

    warnings = []
    for kind in (IdentityKind.WECHAT_UNIONID, IdentityKind.WECHAT_OPENID):
        a, b = ids(mine, kind), ids(theirs, kind)
        if any(a[namespace] != b[namespace] for namespace in a.keys() & b.keys()):
            warnings.append(kind)
    return warnings

