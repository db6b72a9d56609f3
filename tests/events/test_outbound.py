"""Server-to-server URIs (events, back-channel logout) may not reach the IdP's own network unless
the operator allows it: checked at registration, and resolved and checked again at delivery, the
connection going to the address checked (issue 10 item 8; DNS rebinding)."""

from __future__ import annotations

from typing import Any

import pytest

from idp.events.delivery import deliver_due
from idp.events.models import DeliveryStatus
from idp.events.sets import ACCOUNT_DISABLED
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.status import disable_account
from idp.oidc.clients import ClientSpecError
from idp.security import outbound
from idp.security.outbound import OutboundRefused, check_address, parse_networks
from tests.events.conftest import grant_everyone

INTERNAL = [
    "https://169.254.169.254/latest/meta-data",  # cloud metadata, link-local
    "https://10.0.0.1/events",  # private
    "https://[::ffff:a9fe:a9fe]/events",  # 169.254.169.254, IPv4-mapped
    "https://[::ffff:10.0.0.1]/events",
    "https://192.168.1.10/events",
    "https://[fe80::1]/events",
    "https://[fd00::1]/events",
    "https://0.0.0.0/events",
    "https://localhost/events",  # resolves to loopback
]


@pytest.fixture
def nothing_allowed(app: Any) -> None:
    app.config["IDP_OUTBOUND_ALLOWED_NETWORKS"] = ""


@pytest.mark.parametrize("uri", INTERNAL)
@pytest.mark.parametrize("field", ["events_uri", "backchannel_logout_uri"])
def test_an_internal_address_is_refused_at_registration__issue10_8(
    make_client: Any, nothing_allowed: None, uri: str, field: str
) -> None:
    with pytest.raises(ClientSpecError, match="non-public address"):
        make_client(**{field: uri})


def test_the_admin_form_refuses_one_too(app: Any, nothing_allowed: None) -> None:
    from idp.oidc.clients import validate_server_uri

    with pytest.raises(ClientSpecError):
        validate_server_uri("https://[::ffff:a9fe:a9fe]/events")


def test_an_operator_may_allow_a_network(app: Any, make_client: Any) -> None:
    app.config["IDP_OUTBOUND_ALLOWED_NETWORKS"] = "10.0.0.0/8, 127.0.0.1"
    assert make_client(events_uri="https://10.0.0.1/events")[0].events_uri
    with pytest.raises(ClientSpecError):
        make_client(events_uri="http://169.254.169.254/events")


def test_a_public_address_and_an_unresolvable_name_pass_registration(
    make_client: Any, nothing_allowed: None
) -> None:
    assert make_client(events_uri="https://93.184.215.14/events")[0].events_uri
    # Not resolvable now: checked at delivery.
    assert make_client(events_uri="https://rp.example/events")[0].events_uri


def test_the_address_check_itself() -> None:
    allowed = parse_networks("127.0.0.1 10.1.0.0/16")
    assert str(check_address("127.0.0.1", allowed)) == "127.0.0.1"
    assert str(check_address("10.1.2.3", allowed)) == "10.1.2.3"
    assert str(check_address("::ffff:10.1.2.3", allowed)) == "::ffff:a01:203"
    for refused in ("127.0.0.2", "10.2.0.1", "::1", "::ffff:a9fe:a9fe", "100.64.0.1",
                    "224.0.0.1", "2002:a9fe:a9fe::1"):
        with pytest.raises(OutboundRefused):
            check_address(refused, allowed)


def test_delivery_resolves_again_and_refuses__issue10_8(
    app: Any, make_user: Any, make_client: Any, receiver: Any
) -> None:
    """Registered while the operator allowed loopback; the allow-list no longer does: the name
    is resolved at delivery and nothing is sent."""
    port = receiver.url.split(":")[2].split("/")[0]
    app.config["IDP_OUTBOUND_ALLOWED_NETWORKS"] = "127.0.0.0/8 ::1"
    make_client(events_uri=f"http://localhost:{port}/events", event_types=[ACCOUNT_DISABLED])
    account = make_user()
    grant_everyone(account)
    disable_account(account, Actor.admin("a"))
    app.config["IDP_OUTBOUND_ALLOWED_NETWORKS"] = ""

    assert deliver_due().retrying == 1

    assert receiver.received == []
    (row,) = _push_rows()
    assert row.status == DeliveryStatus.PENDING
    assert row.last_error.startswith("refused:") and "not a public address" in row.last_error


def test_delivery_connects_to_the_address_it_checked__dns_rebinding(
    app: Any, make_user: Any, make_client: Any, receiver: Any, monkeypatch: Any
) -> None:
    """The name is resolved once, by the check, and the connection goes to that address: a
    resolver that would answer differently the next time is never asked again."""
    port = receiver.url.split(":")[2].split("/")[0]
    rp = make_client(events_uri="https://rp.example/events", event_types=[ACCOUNT_DISABLED])[0]
    rp.events_uri = f"http://rebind.test:{port}/events"  # http: the receiver is a loopback fake
    account = make_user()
    grant_everyone(account)
    disable_account(account, Actor.admin("a"))
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    monkeypatch.setattr(outbound, "resolve", lambda host, port: next(answers))

    assert deliver_due().delivered == 1

    assert len(receiver.received) == 1  # reached 127.0.0.1, the checked address
    assert receiver.received[0]["host"] == f"rebind.test:{port}"


def _push_rows() -> list[Any]:
    from sqlalchemy import select

    from idp.events.models import EventDelivery, Sink

    db.session.expire_all()
    return list(db.session.scalars(select(EventDelivery).where(EventDelivery.sink == Sink.PUSH)))
