"""Account lifecycle events (issue 15): the identity engine queues them in the transaction of the
change, they name the account, the actor and the channel but no value, and a relying party hears
only of the types it subscribed to, for accounts it holds or held a grant for (issue 10 item 9).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from idp.events import sets
from idp.events.models import EventDelivery, Sink
from idp.events.outbox import emit
from idp.extensions import db
from idp.identity.accounts import identities_of, link_identity, set_claim
from idp.identity.audit import Actor
from idp.identity.links import unlink_identity
from idp.identity.merge import merge_accounts
from idp.identity.models import IdentityKind
from idp.identity.rules import MergeRule, Proof
from idp.identity.status import StatusRefused, disable_account, enable_account
from idp.models_base import utcnow
from idp.oidc.models import RefreshToken
from tests.identity.conftest import age

ADMIN = Actor.admin("admin-1")
EVERY_TYPE = list(sets.ACCOUNT_EVENT_TYPES)


@pytest.fixture(autouse=True)
def amqp_configured(app: Any) -> None:
    """The AMQP sink receives every event: its rows show what the engine queued. Nothing
    connects to the broker here (tests/events/test_amqp.py does)."""
    app.config["IDP_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:5672/"


def queued(sink: str = Sink.AMQP, client_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(event type, event body) of every queued delivery to `sink`, in order."""
    db.session.expire_all()
    query = select(EventDelivery).where(EventDelivery.sink == sink).order_by(EventDelivery.id)
    if client_id is not None:
        query = query.where(EventDelivery.client_id == client_id)
    result = []
    for row in db.session.scalars(query):
        claims = json.loads(row.payload)
        (body,) = claims["events"].values()
        result.append((row.event_type, body))
    return result


def types(sink: str = Sink.AMQP, client_id: str | None = None) -> list[str]:
    return [event_type for event_type, _ in queued(sink, client_id)]


def forget_queued() -> None:
    db.session.query(EventDelivery).delete()
    db.session.commit()


def test_a_new_account_and_its_first_identities_are_announced_in_order(make_user: Any) -> None:
    account = make_user(phone="+8613800138000", email="alice@example.com", name="Alice")

    events = queued()

    assert [event_type for event_type, _ in events] == [
        sets.ACCOUNT_CREATED,
        sets.IDENTITY_LINKED,  # the phone
        sets.PHONE_CHANGED,
        sets.IDENTITY_LINKED,  # the email
        sets.IDENTITY_LINKED,  # the password
        sets.PROFILE_UPDATED,
    ]
    assert {body["sub"] for _, body in events} == {account.id}
    assert {body["actor"] for _, body in events} == {"system:cli"}
    assert events[0][1]["channel"] == "admin"  # created by the operator's `idp users create`
    assert [body.get("kind") for _, body in events if "kind" in body] == [
        IdentityKind.PHONE, IdentityKind.EMAIL, IdentityKind.PASSWORD
    ]
    assert events[-1][1]["claims"] == ["name"]
    # Names and kinds only: never a value.
    payloads = json.dumps([body for _, body in events])
    assert "+8613800138000" not in payloads and "alice@example.com" not in payloads
    assert "Alice" not in payloads


def test_profile_changes_in_one_transaction_make_one_event_naming_every_claim(
    make_user: Any,
) -> None:
    account = make_user()
    forget_queued()

    set_claim(account, "name", "Alice", "user")
    set_claim(account, "nickname", "ali", "user")
    set_claim(account, "nickname", "ali", "user")  # no change, no claim
    db.session.commit()
    set_claim(account, "picture", "https://img.example/a.png", "wechat")
    db.session.commit()

    events = queued()
    assert [(t, body["claims"]) for t, body in events] == [
        (sets.PROFILE_UPDATED, ["name", "nickname"]),
        (sets.PROFILE_UPDATED, ["picture"]),
    ]
    assert [body["actor"] for _, body in events] == [f"user:{account.id}", "system:wechat"]


def test_a_change_rolled_back_leaves_no_event(make_user: Any) -> None:
    account = make_user()
    forget_queued()

    set_claim(account, "name", "Mallory", "user")
    link_identity(account, IdentityKind.EMAIL, "m@example.com", ADMIN, verified=False)
    db.session.rollback()

    assert types() == []


def test_unlinking_a_verified_phone_is_identity_unlinked_and_phone_changed(
    make_user: Any,
) -> None:
    account = make_user()
    link_identity(account, IdentityKind.WECHAT_OPENID, "openid-1", ADMIN, namespace="wxapp",
                  verified=True, proof="wechat_login")  # another way to log in
    db.session.commit()
    phone = next(i for i in identities_of(account) if i.kind == IdentityKind.PHONE)
    forget_queued()

    unlink_identity(phone, ADMIN)

    events = queued()
    assert [t for t, _ in events] == [sets.IDENTITY_UNLINKED, sets.PHONE_CHANGED]
    assert events[0][1] | {"subject": None} == {
        "subject": None, "sub": account.id, "actor": "admin:admin-1", "channel": "admin",
        "kind": IdentityKind.PHONE, "namespace": "", "verified": True,
    }


def test_disable_and_enable_are_engine_calls_with_their_events(make_user: Any) -> None:
    account = make_user()
    forget_queued()

    disable_account(account, ADMIN)
    with pytest.raises(StatusRefused):
        disable_account(account, ADMIN)
    enable_account(account, ADMIN)

    assert types() == [sets.ACCOUNT_DISABLED, sets.ACCOUNT_ENABLED]


def test_an_event_is_queued_in_the_change_s_transaction__a_failed_merge_queues_none(
    make_user: Any,
) -> None:
    survivor, loser = age(make_user(), 10), make_user()
    forget_queued()
    disable_account(loser, ADMIN)
    forget_queued()

    with pytest.raises(Exception):  # noqa: B017 - any refusal; what matters is what stays
        merge_accounts(survivor, loser, rule=MergeRule.SAME_VERIFIED_PHONE,
                       proof=Proof(kind="phone", value="+8613800000000", method="sms"),
                       actor=Actor.rule(MergeRule.SAME_VERIFIED_PHONE))

    assert types() == []


def test_an_account_deleted_event_carries_nothing_personal(make_user: Any) -> None:
    account = make_user(name="Alice", email="alice@example.com")
    forget_queued()

    emit(sets.ACCOUNT_DELETED, account.id, Actor.user(account.id))
    db.session.commit()

    ((event_type, body),) = queued()
    assert event_type == sets.ACCOUNT_DELETED
    assert set(body) == {"subject", "sub", "actor", "channel"}


# --- who hears of what: issue 10 item 9 --------------------------------------------------------


def test_an_rp_that_never_saw_the_accounts_hears_nothing__issue10_9(
    flow: Any, user: Any, make_user: Any, make_client: Any
) -> None:
    flow.tokens()  # the website holds a grant for `user`
    website = flow.client
    website.events_uri = "https://rp.example/events"
    website.event_types = EVERY_TYPE
    stranger = make_client(name="Stranger", events_uri="https://other.example/events",
                           event_types=EVERY_TYPE)[0]
    db.session.commit()
    other = age(make_user(), 10)

    set_claim(user, "nickname", "ali", "user")
    set_claim(other, "nickname", "bob", "user")
    merge_accounts(other, user, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("t"),
                   actor=ADMIN)

    assert types(Sink.PUSH, website.client_id) == [sets.PROFILE_UPDATED, sets.ACCOUNT_MERGED]
    assert types(Sink.PUSH, stranger.client_id) == []
    assert types(Sink.PUSH) == types(Sink.PUSH, website.client_id)


def test_an_rp_that_held_a_grant_still_hears__revoked_refresh_token(
    flow: Any, user: Any
) -> None:
    flow.tokens(scope="openid offline_access")
    website = flow.client
    website.events_uri = "https://rp.example/events"
    website.event_types = [sets.ACCOUNT_DISABLED]
    db.session.query(RefreshToken).update({"revoked_at": utcnow()})
    from idp.oidc.models import Consent

    db.session.query(Consent).delete()
    db.session.commit()

    disable_account(user, ADMIN)

    assert types(Sink.PUSH, website.client_id) == [sets.ACCOUNT_DISABLED]


def test_an_rp_hears_only_the_types_it_subscribed_to(flow: Any, user: Any) -> None:
    flow.tokens()
    website = flow.client
    website.events_uri = "https://rp.example/events"  # event_types None: merges only
    db.session.commit()

    set_claim(user, "nickname", "ali", "user")
    disable_account(user, ADMIN)
    assert types(Sink.PUSH) == []

    website.event_types = [sets.PROFILE_UPDATED]
    db.session.commit()
    set_claim(user, "nickname", "alice", "user")
    db.session.commit()
    assert types(Sink.PUSH) == [sets.PROFILE_UPDATED]


def test_a_client_is_registered_with_its_event_types(make_client: Any) -> None:
    from idp.oidc.clients import ClientSpecError

    rp = make_client(events_uri="https://rp.example/events",
                     event_types=[sets.ACCOUNT_DISABLED, sets.ACCOUNT_ENABLED])[0]
    assert rp.event_types == [sets.ACCOUNT_DISABLED, sets.ACCOUNT_ENABLED]
    with pytest.raises(ClientSpecError, match="unknown event types"):
        make_client(events_uri="https://rp.example/events", event_types=["account-exploded"])


def test_idp_clients_create_takes_event_types_and_management_scopes(app: Any) -> None:
    import json as json_module

    from idp.oidc.models import Client

    runner = app.test_cli_runner()
    result = runner.invoke(args=[
        "clients", "create", "--name", "CRM", "--grant-type", "client_credentials",
        "--scope", "idp:accounts.read idp:events.read", "--events-uri",
        "https://crm.example/events", "--event-type", "account-created",
        "--event-type", "account-deleted", "--json",
    ])
    assert result.exit_code == 0, result.output
    client_id = json_module.loads(result.output)["client_id"]
    crm = db.session.get(Client, client_id)
    assert crm.event_types == ["account-created", "account-deleted"]
    assert crm.scope == "idp:accounts.read idp:events.read"

    refused = runner.invoke(args=["clients", "create", "--name", "X", "--events-uri",
                                  "https://crm.example/events", "--event-type", "nope"])
    assert refused.exit_code != 0 and "unknown event types" in refused.output
