"""When two accounts become one: the rules, in one place (the README's "One account per
person" section is the same text for people).

1. Accounts are merged automatically only on proof that one person holds both:
   - `same_wechat_unionid`: WeChat reports, in one login, an openid held by one account together
     with a unionid held by the other (the unionid is the same person across every app of one
     Open Platform account);
   - `same_verified_phone`: a phone number that one account holds verified is verified again by
     the other account — an SMS code on the website, or WeChat's `getPhoneNumber` in the
     mini-program. The unique index on verified identities means the phone is then verified on
     both sides, and never held by two accounts at once.
2. Never on an unverified phone or email: they are typed in, not proved.
3. A matching verified email never merges: it only appears in `idp identity report` as a
   suggestion for an admin.
4. Even with proof, no automatic merge of two accounts that hold different WeChat identities of
   the same kind (two unionids, or two openids of one appid): they are two WeChat users, and
   the phone number is most likely recycled. An admin may still merge them.
5. Never an account into itself, never a merged account, and automatically never a disabled one
   or one pending deletion (its tokens would come back through the survivor).
6. The survivor is the older account (it keeps its `sub`); an admin may pick the other one.
7. An identity that is the account's last way to log in cannot be unlinked. The ways in are a
   WeChat openid or unionid, a verified phone (one-step SMS-code sign-in), or a password together
   with a verified phone or email to name the account by.
8. Once an admin has undone a merge of two accounts, no automatic rule merges that pair again:
   the undo is the admin's finding that they are two people (the undone merge record says so).
   An admin may still merge them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from idp.identity.accounts import IdentityError
from idp.identity.audit import Actor
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind


class MergeRule:
    SAME_WECHAT_UNIONID = "same_wechat_unionid"
    SAME_VERIFIED_PHONE = "same_verified_phone"
    ADMIN_DECISION = "admin_decision"

    AUTOMATIC = (SAME_WECHAT_UNIONID, SAME_VERIFIED_PHONE)
    ALL = (SAME_WECHAT_UNIONID, SAME_VERIFIED_PHONE, ADMIN_DECISION)


class ProofMethod:
    """How an identity was just verified (stored as `Identity.verified_by`)."""

    SMS = "sms"  # a code sent to the phone, typed on the website
    WECHAT_PHONE = "wechat_phone"  # WeChat's getPhoneNumber in the mini-program
    WECHAT_LOGIN = "wechat_login"  # jscode2session or sns/oauth2/access_token
    OPERATOR = "operator"  # the command line or the demo seed vouches for it
    ADMIN = "admin"  # an admin decided, after looking


# Which identity a rule rests on, and which fresh proofs of it the rule accepts.
RULE_EVIDENCE: dict[str, tuple[str, frozenset[str]]] = {
    MergeRule.SAME_WECHAT_UNIONID: (
        IdentityKind.WECHAT_UNIONID,
        frozenset({ProofMethod.WECHAT_LOGIN}),
    ),
    MergeRule.SAME_VERIFIED_PHONE: (
        IdentityKind.PHONE,
        frozenset({ProofMethod.SMS, ProofMethod.WECHAT_PHONE}),
    ),
}

# Two different values of these on the two accounts mean two different WeChat users.
EXCLUSIVE_KINDS = (IdentityKind.WECHAT_UNIONID, IdentityKind.WECHAT_OPENID)


@dataclass(frozen=True)
class Proof:
    """What the merge rests on: the shared identity and how it was verified this time."""

    kind: str
    value: str
    method: str
    namespace: str = ""
    verified: bool = True
    # Free text for the audit trail, e.g. "openid o16w… reported with this unionid".
    note: str | None = None

    @classmethod
    def admin(cls, reason: str) -> Proof:
        return cls(kind="admin", value="", method=ProofMethod.ADMIN, note=reason)

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, "")}


class MergeRefused(IdentityError):
    """The rules do not allow this merge; `code` names the rule that refused."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class UnlinkRefused(IdentityError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def rule_for_shared_identity(kind: str, verified: bool) -> str:
    """The automatic rule that a shared identity of this kind would trigger, or a refusal."""
    if kind == IdentityKind.EMAIL:
        raise MergeRefused("email_is_only_a_suggestion", "a matching email never merges accounts")
    if not verified:
        raise MergeRefused("unverified_identity", f"an unverified {kind} proves nothing")
    for rule, (rule_kind, _methods) in RULE_EVIDENCE.items():
        if rule_kind == kind:
            return rule
    raise MergeRefused("no_rule_for_kind", f"a shared {kind} does not merge accounts")


def check_merge(
    survivor: Account,
    loser: Account,
    rule: str,
    proof: Proof,
    actor: Actor,
    survivor_identities: Iterable[Identity],
    loser_identities: Iterable[Identity],
    kept_apart: bool = False,
) -> None:
    """Raises MergeRefused unless the rules allow merging `loser` into `survivor` now.
    `kept_apart`: an admin undid a merge of these two before (rule 8)."""
    if rule not in MergeRule.ALL:
        raise MergeRefused("unknown_rule", f"no merge rule {rule!r}")
    if survivor.id == loser.id:
        raise MergeRefused("same_account", "an account cannot be merged into itself")
    for account in (survivor, loser):
        if account.status == AccountStatus.MERGED:
            raise MergeRefused("already_merged", f"account {account.id} was merged already")
    if rule == MergeRule.ADMIN_DECISION:
        # An admin, or a back-end service to which an admin granted the `idp:merges` scope.
        if actor.type not in ("admin", "client"):
            raise MergeRefused("admin_only", "only an admin may merge without proof")
        return
    if not (survivor.is_active and loser.is_active):
        raise MergeRefused("account_disabled", "a disabled account is never merged automatically")
    if survivor.deletion_due_at is not None or loser.deletion_due_at is not None:
        raise MergeRefused(
            "deletion_pending", "an account pending deletion is never merged automatically"
        )
    if kept_apart:
        raise MergeRefused(
            "kept_apart_by_admin",
            "an admin undid a merge of these accounts: only an admin may merge them again",
        )
    _check_proof(rule, proof, survivor_identities, loser_identities)
    _check_no_conflicting_wechat(survivor_identities, loser_identities)


def _check_proof(
    rule: str,
    proof: Proof,
    survivor_identities: Iterable[Identity],
    loser_identities: Iterable[Identity],
) -> None:
    expected_kind, accepted_methods = RULE_EVIDENCE[rule]
    if proof.kind == IdentityKind.EMAIL:
        raise MergeRefused("email_is_only_a_suggestion", "a matching email never merges accounts")
    if not proof.verified:
        raise MergeRefused("unverified_identity", f"an unverified {proof.kind} proves nothing")
    if proof.kind != expected_kind:
        raise MergeRefused("proof_does_not_fit_rule", f"{rule} rests on a {expected_kind}")
    if proof.method not in accepted_methods:
        raise MergeRefused(
            "proof_method_not_accepted", f"{rule} does not accept proof by {proof.method!r}"
        )
    held = [
        identity
        for identity in [*survivor_identities, *loser_identities]
        if identity.kind == proof.kind
        and identity.namespace == proof.namespace
        and identity.value == proof.value
        and identity.verified
    ]
    if not held:
        raise MergeRefused("proof_not_held", f"neither account holds that verified {proof.kind}")


def _check_no_conflicting_wechat(
    survivor_identities: Iterable[Identity], loser_identities: Iterable[Identity]
) -> None:
    def wechat_ids(identities: Iterable[Identity]) -> dict[tuple[str, str], set[str]]:
        found: dict[tuple[str, str], set[str]] = {}
        for identity in identities:
            if identity.kind in EXCLUSIVE_KINDS and identity.verified:
                found.setdefault((identity.kind, identity.namespace), set()).add(identity.value)
        return found

    mine, theirs = wechat_ids(survivor_identities), wechat_ids(loser_identities)
    for key in mine.keys() & theirs.keys():
        if mine[key] != theirs[key]:
            raise MergeRefused(
                "conflicting_wechat_identities",
                f"the accounts hold different {key[0]}s: two WeChat users, not one person",
            )


def choose_survivor(a: Account, b: Account, admin_choice: Account | None = None) -> Account:
    """The older account survives (it keeps its `sub`), unless an admin picks one of the two."""
    if admin_choice is not None:
        if admin_choice.id not in (a.id, b.id):
            raise MergeRefused("survivor_not_a_party", "the survivor must be one of the two")
        return admin_choice
    return min((a, b), key=lambda account: (account.created_at, account.id))


def ways_to_log_in(identities: Iterable[Identity]) -> list[str]:
    """The login methods these identities still allow (see rule 7)."""
    identities = list(identities)
    kinds = {identity.kind for identity in identities}
    verified = {identity.kind for identity in identities if identity.verified}
    ways = [kind for kind in (IdentityKind.WECHAT_OPENID, IdentityKind.WECHAT_UNIONID,
                              IdentityKind.PHONE) if kind in verified]
    if IdentityKind.PASSWORD in kinds and verified & {IdentityKind.PHONE, IdentityKind.EMAIL}:
        ways.append(IdentityKind.PASSWORD)
    return ways


def check_unlink(identity: Identity, identities: Iterable[Identity]) -> None:
    remaining = [other for other in identities if other.id != identity.id]
    if not ways_to_log_in(remaining):
        raise UnlinkRefused(
            "last_way_to_log_in", "this is the account's last way to log in; add another first"
        )


def lacks_way_to_log_in(account_id: Any) -> Any:
    """`not ways_to_log_in(...)` as a SQL condition on an account id column (rule 7), so that
    reports over millions of accounts need no Python object per identity. Two NOT EXISTS joined
    by AND (no verified WeChat id or phone; no password with a verified email) let the database
    run each as one anti-join; the same test written with OR probes every account. Keep the two
    in step."""
    from sqlalchemy import exists, select
    from sqlalchemy.orm import aliased

    wechat_or_phone = exists(select(Identity.id).where(
        Identity.account_id == account_id, Identity.verified.is_(True),
        Identity.kind.in_((IdentityKind.WECHAT_OPENID, IdentityKind.WECHAT_UNIONID,
                           IdentityKind.PHONE))))
    password, name = aliased(Identity), aliased(Identity)
    named_password = exists(
        select(password.id)
        .join(name, name.account_id == password.account_id)
        .where(password.account_id == account_id, password.kind == IdentityKind.PASSWORD,
               name.verified.is_(True), name.kind == IdentityKind.EMAIL)
    )
    return ~wechat_or_phone & ~named_password
