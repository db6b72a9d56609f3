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
from idp.identity.claims import served_row
from idp.identity.merge import claim_rows, claims_after_merge
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
    """The merge's own rule (`merge.claims_after_merge`), then the served value of each claim
    as the claims are served (`claims.served_row`)."""
    survivor_rows, loser_rows = claim_rows(survivor), claim_rows(loser)
    merged = claims_after_merge(survivor_rows, loser_rows)
    outcomes = []
    for name in sorted({name for name, _source in merged}):
        candidates = [(row, side) for (claim, _s), (row, side) in merged.items() if claim == name]
        winner = served_row([row for row, _side in candidates])
        side = next(side for row, side in candidates if row is winner)
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
    if any(rank(row.name, row.source) == rank(winner.name, winner.source) for row in others):
        return "more_recent"
    return "better_source"


def _served(rows: dict[tuple[str, str], ProfileClaim], name: str) -> ProfileClaim | None:
    candidates = [row for (claim, _source), row in rows.items() if claim == name]
    return served_row(candidates) if candidates else None


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

