"""A merge (and an undo) is one transaction: an error half-way leaves the database exactly as
it was — every row of every table compared before and after."""

from __future__ import annotations

from typing import Any

import pytest

from idp.extensions import db
from idp.identity import merge
from idp.identity.accounts import link_identity, set_claim
from idp.identity.audit import Actor
from idp.identity.links import bind_verified_phone
from idp.identity.merge import merge_accounts, undo_merge
from idp.identity.models import IdentityKind
from idp.identity.rules import MergeRule, Proof
from idp.oidc.models import Consent
from tests.conftest import CodeFlow, login
from tests.identity.conftest import age, dump_database

PHONE = "+8613800138050"
ADMIN = Actor.admin("admin-1")


class Injected(RuntimeError):
    pass


def fail_after(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """The step runs (its changes reach the database) and then the merge blows up."""
    real = getattr(merge, step)

    def exploding(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        db.session.flush()
        raise Injected(step)

    monkeypatch.setattr(merge, step, exploding)


@pytest.fixture
def two_lived_in_accounts(
    client: Any, make_user: Any, make_client: Any, website: Any, wechat_user: Any
) -> tuple[Any, Any]:
    """Two accounts with something in every table a merge touches."""
    subscribed = make_client(name="Subscribed", events_uri="https://rp.example/events")[0]
    survivor = age(make_user(phone=PHONE, name="Alice"), 30)
    loser = make_user(phone="+8613800138051", email="alice@example.com")
    db.session.add(Consent(account_id=loser.id, client_id=subscribed.client_id, scopes=["openid"]))
    link_identity(loser, IdentityKind.WECHAT_OPENID, "openid-x", ADMIN, namespace="wxapp",
                  verified=True, proof="wechat_login")
    set_claim(survivor, "nickname", "ali", "wechat")
    set_claim(loser, "nickname", "alice", "wechat")
    set_claim(loser, "name", "Alice L.", "user")
    db.session.add(Consent(account_id=survivor.id, client_id=website[0].client_id,
                           scopes=["openid"]))
    db.session.commit()
    login(client, "+8613800138051")
    CodeFlow(client, website[0], website[1]).tokens()  # loser: consent, session, tokens
    return survivor, loser


MERGE_STEPS = [
    "move_identities", "merge_claims", "merge_protocol_state", "end_credentials",
    "announce_account_event",
]


@pytest.mark.parametrize("step", MERGE_STEPS)
def test_an_error_half_way_through_a_merge_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, two_lived_in_accounts: tuple[Any, Any], step: str
) -> None:
    survivor, loser = two_lived_in_accounts
    before = dump_database()
    fail_after(monkeypatch, step)

    with pytest.raises(Injected):
        merge_accounts(survivor, loser, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("x"),
                       actor=ADMIN)

    assert dump_database() == before


def test_an_error_half_way_through_a_phone_merge_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, two_lived_in_accounts: tuple[Any, Any]
) -> None:
    survivor, loser = two_lived_in_accounts
    before = dump_database()
    fail_after(monkeypatch, "end_credentials")

    with pytest.raises(Injected):
        bind_verified_phone(loser, PHONE, "sms", Actor.user(loser.id))

    assert dump_database() == before


@pytest.mark.parametrize(
    "step",
    ["_restore_claims", "_restore_protocol_state", "end_credentials", "announce_account_event"],
)
def test_an_error_half_way_through_an_undo_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, two_lived_in_accounts: tuple[Any, Any], step: str
) -> None:
    survivor, loser = two_lived_in_accounts
    record = merge_accounts(survivor, loser, rule=MergeRule.ADMIN_DECISION,
                            proof=Proof.admin("x"), actor=ADMIN)
    before = dump_database()
    fail_after(monkeypatch, step)

    with pytest.raises(Injected):
        undo_merge(record, ADMIN)

    assert dump_database() == before


def test_the_dump_does_see_a_merge(two_lived_in_accounts: tuple[Any, Any]) -> None:
    """The control: without an injected error the same dump differs."""
    survivor, loser = two_lived_in_accounts
    before = dump_database()
    merge_accounts(survivor, loser, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("x"),
                   actor=ADMIN)
    after = dump_database()
    changed = {table for table in before if before[table] != after[table]}
    assert {"account", "identity", "profile_claim", "consent", "refresh_token", "login_session",
            "merge_record", "account_alias", "audit_event", "event_delivery"} <= changed
