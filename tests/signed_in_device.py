"""A device signed in to a relying party that listens for back-channel logout on loopback: the
shared set-up of the tests that end a session through each door (admin, management API, account
centre, merge, deletion, password reset) and check the same two outcomes: the relying party gets a
logout token for that session (Back-Channel Logout 1.0 §2.5) and the session's refresh token is
refused afterwards (RFC 6749 §5.2 `invalid_grant`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from idp.events.delivery import deliver_due
from tests.conftest import CodeFlow, login


@dataclass
class BackchannelReceiver:
    """A relying party's back-channel logout URI: a real HTTP server on loopback."""

    url: str = ""
    received: list[dict[str, str]] = field(default_factory=list)


def serve_backchannel_receiver() -> Iterator[BackchannelReceiver]:
    receiver = BackchannelReceiver()

    @Request.application
    def relying_party(request: Request) -> Response:
        receiver.received.append(request.form.to_dict())
        return Response("", status=200)

    server = make_server("127.0.0.1", 0, relying_party, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/backchannel"
    yield receiver
    server.shutdown()


@dataclass
class SignedInDevice:
    """A browser signed in as `phone`, holding an offline refresh token of the relying party."""

    flow: CodeFlow
    tokens: dict[str, Any]
    sid: str

    @classmethod
    def start(cls, app: Flask, phone: str, make_client: Any,
              receiver: BackchannelReceiver) -> SignedInDevice:
        rp, secret = make_client(name="Shop", first_party=True,
                                 backchannel_logout_uri=receiver.url)
        browser = app.test_client()
        assert login(browser, phone).status_code == 302
        flow = CodeFlow(browser, rp, secret)
        tokens = flow.tokens(scope="openid offline_access")
        sid = str(_claims(browser, tokens["id_token"])["sid"])
        return cls(flow, tokens, sid)

    def assert_signed_out(self, receiver: BackchannelReceiver) -> None:
        """The relying party heard of this session's end, and its refresh token is dead."""
        deliver_due()
        logout_tokens = [_claims(self.flow.browser, call["logout_token"])
                         for call in receiver.received]
        assert self.sid in [token["sid"] for token in logout_tokens], logout_tokens
        refused = self.flow.refresh(self.tokens["refresh_token"])
        assert refused.status_code == 400, refused.get_json()
        assert refused.get_json()["error"] == "invalid_grant"


def _claims(browser: Any, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(browser.get("/oauth/jwks").get_json())
    return dict(jwt.decode(token, keys, algorithms=["RS256", "ES256"]).claims)
