"""rules.py: every automatic merge needs proof; every refusal, one test each."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from idp.extensions import db
from idp.identity.accounts import link_identity
from idp.identity.audit import Actor
from idp.identity.merge import merge_accounts
from idp.identity.models import AccountStatus, Identity, IdentityKind
from idp.identity.rules import (
    MergeRefused,
    MergeRule,
    Proof,
    ProofMethod,
    choose_survivor,
    rule_for_shared_identity,
    ways_to_log_in,
)
from idp.models_base import utcnow
from tests.identity.conftest import age

RULE = Actor.rule("test")
PHONE = "+8613800138020"


def refusal(survivor: Any, loser: Any, rule: str, proof: Proof, actor: Actor = RULE) -> str:
    with pytest.raises(MergeRefused) as refused:
        merge_accounts(survivor, loser, rule=rule, proof=proof, actor=actor)
    return refused.value.code


@pytest.fixture
def pair(make_user: Any) -> tuple[Any, Any]:
    return age(make_user(phone=PHONE), 10), make_user()


def test_a_verified_phone_proved_by_sms_merges(pair: tuple[Any, Any]) -> None:
    survivor, loser = pair
    proof = Proof(IdentityKind.PHONE, PHONE, ProofMethod.SMS)
    merge_accounts(survivor, loser, rule=MergeRule.SAME_VERIFIED_PHONE, proof=proof, actor=RULE)
    assert loser.status == AccountStatus.MERGED


def test_an_unverified_phone_never_merges(pair: tuple[Any, Any]) -> None:
    proof = Proof(IdentityKind.PHONE, PHONE, ProofMethod.SMS, verified=False)
    assert refusal(*pair, MergeRule.SAME_VERIFIED_PHONE, proof) == "unverified_identity"


def test_a_matching_email_never_merges_even_verified(pair: tuple[Any, Any]) -> None:
    survivor, loser = pair
    link_identity(survivor, IdentityKind.EMAIL, "a@example.com", RULE, verified=True, proof="x")
    db.session.commit()
    proof = Proof(IdentityKind.EMAIL, "a@example.com", "email_link")
    assert refusal(*pair, MergeRule.SAME_VERIFIED_PHONE, proof) == "email_is_only_a_suggestion"
    assert refusal(*pair, MergeRule.SAME_WECHAT_UNIONID, proof) == "email_is_only_a_suggestion"


def test_a_proof_of_another_kind_does_not_fit_the_rule(pair: tuple[Any, Any]) -> None:
    proof = Proof(IdentityKind.PHONE, PHONE, ProofMethod.SMS)
    assert refusal(*pair, MergeRule.SAME_WECHAT_UNIONID, proof) == "proof_does_not_fit_rule"


def test_a_phone_vouched_for_by_the_operator_is_no_fresh_proof(pair: tuple[Any, Any]) -> None:
    proof = Proof(IdentityKind.PHONE, PHONE, ProofMethod.OPERATOR)
    assert refusal(*pair, MergeRule.SAME_VERIFIED_PHONE, proof) == "proof_method_not_accepted"


def test_the_proof_must_be_held_verified_by_one_of_the_two(pair: tuple[Any, Any]) -> None:
    proof = Proof(IdentityKind.PHONE, "+8613900139000", ProofMethod.SMS)
    assert refusal(*pair, MergeRule.SAME_VERIFIED_PHONE, proof) == "proof_not_held"


def test_two_different_unionids_are_two_people(make_user: Any, wechat_user: Any) -> None:
    survivor = age(wechat_user("openid-a", "unionid-a"), 10)
    loser = wechat_user("openid-b", "unionid-b")
    link_identity(survivor, IdentityKind.PHONE, PHONE, RULE, verified=True, proof="sms")
    db.session.commit()
    proof = Proof(IdentityKind.PHONE, PHONE, ProofMethod.WECHAT_PHONE)
    code = refusal(survivor, loser, MergeRule.SAME_VERIFIED_PHONE, proof)
    assert code == "conflicting_wechat_identities"


def test_two_openids_of_one_app_are_two_people(wechat_user: Any) -> None:
    survivor = age(wechat_user("openid-c"), 10)
    loser = wechat_user("openid-d")
    link_identity(survivor, IdentityKind.PHONE, PHONE, RULE, verified=True, proof="sms")
    db.session.commit()
    proof = Proof(IdentityKind.PHONE, PHONE, ProofMethod.WECHAT_PHONE)
    code = refusal(survivor, loser, MergeRule.SAME_VERIFIED_PHONE, proof)
    assert code == "conflicting_wechat_identities"


def test_an_admin_may_merge_what_the_rules_would_not(wechat_user: Any) -> None:
    survivor, loser = age(wechat_user("openid-e", "unionid-e"), 10), wechat_user("o-f", "u-f")
    merge_accounts(
        survivor, loser, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("checked ID card"),
        actor=Actor.admin("admin-1"),
    )
    assert loser.status == AccountStatus.MERGED


def test_only_an_admin_may_merge_without_proof(pair: tuple[Any, Any]) -> None:
    code = refusal(*pair, MergeRule.ADMIN_DECISION, Proof.admin("trust me"), Actor.user("x"))
    assert code == "admin_only"


def test_an_account_is_never_merged_into_itself(pair: tuple[Any, Any]) -> None:
    survivor, _ = pair
    code = refusal(survivor, survivor, MergeRule.ADMIN_DECISION, Proof.admin("x"),
                   Actor.admin("a"))
    assert code == "same_account"


def test_a_disabled_account_is_never_merged_automatically(pair: tuple[Any, Any]) -> None:
    survivor, loser = pair
    loser.status = AccountStatus.DISABLED
    db.session.commit()
    proof = Proof(IdentityKind.PHONE, PHONE, ProofMethod.SMS)
    assert refusal(survivor, loser, MergeRule.SAME_VERIFIED_PHONE, proof) == "account_disabled"


def test_an_account_pending_deletion_is_never_merged_automatically(
    pair: tuple[Any, Any],
) -> None:
    """Issue 23 item 2: its tokens would come back through the survivor of a phone binding."""
    survivor, loser = pair
    survivor.deletion_due_at = utcnow() + timedelta(days=15)
    db.session.commit()
    proof = Proof(IdentityKind.PHONE, PHONE, ProofMethod.SMS)
    assert refusal(survivor, loser, MergeRule.SAME_VERIFIED_PHONE, proof) == "deletion_pending"
    assert refusal(loser, survivor, MergeRule.SAME_VERIFIED_PHONE, proof) == "deletion_pending"


def test_an_unknown_rule_is_refused(pair: tuple[Any, Any]) -> None:
    proof = Proof(IdentityKind.PHONE, PHONE, ProofMethod.SMS)
    assert refusal(*pair, "same_name", proof) == "unknown_rule"


def test_which_shared_identity_triggers_which_rule() -> None:
    assert rule_for_shared_identity(IdentityKind.PHONE, True) == MergeRule.SAME_VERIFIED_PHONE
    assert rule_for_shared_identity(IdentityKind.WECHAT_UNIONID, True) == (
        MergeRule.SAME_WECHAT_UNIONID
    )
    for kind, verified, code in [
        (IdentityKind.EMAIL, True, "email_is_only_a_suggestion"),
        (IdentityKind.PHONE, False, "unverified_identity"),
        (IdentityKind.PASSWORD, True, "no_rule_for_kind"),
    ]:
        with pytest.raises(MergeRefused) as refused:
            rule_for_shared_identity(kind, verified)
        assert refused.value.code == code


def test_the_older_account_survives_unless_an_admin_picks(make_user: Any) -> None:
    older, newer = age(make_user(), 10), age(make_user(), 1)
    assert choose_survivor(older, newer).id == older.id
    assert choose_survivor(newer, older).id == older.id
    assert choose_survivor(older, newer, admin_choice=newer).id == newer.id
    with pytest.raises(MergeRefused):
        choose_survivor(older, newer, admin_choice=make_user())


@pytest.mark.parametrize(
    ("held", "ways"),
    [
        ([("password", True), ("phone", True)], ["phone", "password"]),
        ([("password", True), ("email", True)], ["password"]),
        ([("password", True), ("phone", False)], []),  # nothing names the account
        ([("phone", True)], ["phone"]),  # one-step SMS-code sign-in
        ([("phone", False)], []),
        ([("wechat_openid", True)], ["wechat_openid"]),
        ([("wechat_unionid", True), ("password", True)], ["wechat_unionid"]),
        ([], []),
    ],
)
def test_ways_to_log_in(held: list[tuple[str, bool]], ways: list[str]) -> None:
    identities = [Identity(id=n, kind=kind, value=str(n), verified=verified)
                  for n, (kind, verified) in enumerate(held)]
    assert ways_to_log_in(identities) == ways
