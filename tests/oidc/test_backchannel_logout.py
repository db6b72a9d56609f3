"""OpenID Connect Back-Channel Logout 1.0: the end of an IdP session reaches the relying parties
that got tokens in it, as a signed logout token POSTed to their back-channel logout URI."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from idp.events.delivery import deliver_due
from idp.events.models import EventDelivery
from idp.extensions import db
from tests.conftest import ISSUER, CodeFlow, login


@pytest.fixture
def receiver() -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"received": [], "status": 200}

    @Request.application
    def app(request: Request) -> Response:
        state["received"].append(
            {"content_type": request.content_type, "form": request.form.to_dict()}
        )
        return Response("", status=state["status"])

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/backchannel"
    yield state
    server.shutdown()


@pytest.fixture
def site(make_client: Any, receiver: dict[str, Any]) -> tuple[Any, str]:
    return make_client(
        name="BCL site", first_party=True, backchannel_logout_uri=receiver["url"],
        post_logout_redirect_uris=["https://rp.example/bye"],
    )  # fmt: skip


def test_logout_token_reaches_the_relying_party__backchannel_logout_2_5(
    client: Any, user: Any, site: tuple[Any, str], receiver: dict[str, Any]
) -> None:
    login(client, "+8613800138000")
    tokens = CodeFlow(client, site[0], site[1]).tokens()
    keys = KeySet.import_key_set(client.get("/oauth/jwks").get_json())
    sid = jwt.decode(tokens["id_token"], keys).claims["sid"]

    client.get("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert deliver_due().delivered == 1

    [call] = receiver["received"]
    assert call["content_type"] == "application/x-www-form-urlencoded"
    token = jwt.decode(call["form"]["logout_token"], keys, algorithms=["RS256"])
    assert token.header["typ"] == "logout+jwt"
    claims = token.claims
    assert claims["iss"] == ISSUER and claims["aud"] == site[0].client_id
    assert claims["sub"] == user.id and claims["sid"] == sid
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims and claims["jti"]


def test_only_clients_of_that_session_are_told(
    client: Any, user: Any, site: tuple[Any, str], receiver: dict[str, Any], make_client: Any
) -> None:
    make_client(name="Never used", backchannel_logout_uri=receiver["url"] + "/other")
    login(client, "+8613800138000")
    CodeFlow(client, site[0], site[1]).tokens()
    from tests.conftest import csrf_token

    client.post(
        "/logout", data={"csrf_token": csrf_token(client.get("/account").get_data(as_text=True))}
    )
    deliver_due()
    assert len(receiver["received"]) == 1


def test_a_failing_receiver_is_retried(
    client: Any, user: Any, site: tuple[Any, str], receiver: dict[str, Any]
) -> None:
    login(client, "+8613800138000")
    tokens = CodeFlow(client, site[0], site[1]).tokens()
    receiver["status"] = 500
    client.get("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert deliver_due().retrying == 1
    row = db.session.query(EventDelivery).one()
    assert row.status == "pending" and row.last_error == "HTTP 500"


def test_discovery_advertises_backchannel_logout__backchannel_logout_2_1(client: Any) -> None:
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True


def test_a_merge_logs_the_merged_accounts_sessions_out_everywhere(
    client: Any, make_user: Any, site: tuple[Any, str], receiver: dict[str, Any]
) -> None:
    from datetime import timedelta

    from idp.identity.audit import Actor
    from idp.identity.merge import merge_accounts
    from idp.identity.rules import MergeRule, Proof
    from idp.models_base import utcnow

    survivor = make_user(phone="+8613800138011")
    survivor.created_at = utcnow() - timedelta(days=10)
    loser = make_user(phone="+8613800138012")
    db.session.commit()
    login(client, "+8613800138012")
    CodeFlow(client, site[0], site[1]).tokens()

    merge_accounts(
        survivor,
        loser,
        rule=MergeRule.ADMIN_DECISION,
        proof=Proof.admin("same person"),
        actor=Actor.admin(survivor.id),
    )
    assert deliver_due().delivered == 1
    keys = KeySet.import_key_set(client.get("/oauth/jwks").get_json())
    token = jwt.decode(receiver["received"][0]["form"]["logout_token"], keys)
    assert token.claims["sub"] == loser.id
