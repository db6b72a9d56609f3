"""A real RFC 8935 receiver on loopback (it records every POST and answers as told), and the
real RabbitMQ with a private exchange per test (skipped, with the reason, when unreachable)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.events.amqp_helpers import AMQP_URL, Broker, broker_skip_reason


@pytest.fixture
def broker(app: Any) -> Iterator[Broker]:
    reason = broker_skip_reason()
    if reason:
        pytest.skip(reason)
    name = f"idp.events.test-{uuid.uuid4().hex[:12]}"
    target = Broker(AMQP_URL, exchange=name, queue=name)
    app.config["IDP_AMQP_URL"] = AMQP_URL
    app.config["IDP_AMQP_EXCHANGE"] = name
    yield target
    target.close()


def grant_everyone(account: Any) -> None:
    """Every RP with an events URI gets a consent of `account` (so it may hear of it)."""
    from idp.extensions import db
    from idp.oidc.models import Client, Consent

    for rp in db.session.scalars(select(Client).where(Client.events_uri.is_not(None))):
        db.session.add(Consent(account_id=account.id, client_id=rp.client_id, scopes=["openid"]))
    db.session.commit()


@dataclass
class Receiver:
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    # Status codes to answer with, in order; then 202 for ever.
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0  # seconds before each answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        time.sleep(self.delay)
        with self.lock:
            self.received.append(
                {
                    "path": request.path,
                    "host": request.headers.get("Host"),
                    "content_type": request.headers.get("Content-Type"),
                    "accept": request.headers.get("Accept"),
                    "body": request.get_data(as_text=True),
                }
            )
            status = self.answers.pop(0) if self.answers else 202
        if status == 400:
            response = Response(
                '{"err": "invalid_key", "description": "unknown kid"}',
                status=400, content_type="application/json",
            )
        else:
            response = Response(b"", status=status)
        return response(environ, start_response)

    @property
    def tokens(self) -> list[str]:
        return [entry["body"] for entry in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver()
    server = make_server("127.0.0.1", 0, target, threaded=True)
    target.url = f"http://127.0.0.1:{server.server_port}/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield target
    server.shutdown()
    thread.join(timeout=5)
