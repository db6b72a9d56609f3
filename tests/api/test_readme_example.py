"""The README's back-end service example, run as written against a served IdP (real HTTP on
loopback) and the real RabbitMQ: it finds the customer through the API and prints the events
that follow from the queue."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
from werkzeug.serving import make_server

from idp import create_app
from idp.extensions import db
from tests.conftest import base_config
from tests.events.amqp_helpers import AMQP_URL, broker_skip_reason

README = Path(__file__).resolve().parents[2] / "README.md"
QUEUE = "orders.idp-events"


def readme_example() -> str:
    text = README.read_text()
    section = text.split("### A back-end service using both", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README lost its back-end service example"
    return match.group(1)


@pytest.fixture
def served(tmp_path: Any, database_url: str, backend: str) -> Iterator[dict[str, Any]]:
    reason = broker_skip_reason()
    if reason:
        pytest.skip(reason)
    probe = make_server("127.0.0.1", 0, None)
    port = probe.server_port
    probe.server_close()
    exchange = f"idp.events.readme-{uuid.uuid4().hex[:8]}"
    app = create_app({**base_config(tmp_path, database_url),
                      "IDP_ISSUER": f"http://127.0.0.1:{port}",
                      "IDP_AMQP_URL": AMQP_URL, "IDP_AMQP_EXCHANGE": exchange})
    with app.app_context():
        if backend == "postgresql":
            db.drop_all()
        db.create_all()
        from idp.accounts.seed import create_password_user
        from idp.oidc.clients import create_client

        customer = create_password_user("+8613800138000", "correct horse battery")
        orders, secret = create_client(name="Orders", grant_types=["client_credentials"],
                                       scope="idp:accounts.read")
        info = {"issuer": f"http://127.0.0.1:{port}", "client_id": orders.client_id,
                "secret": secret, "sub": customer.id, "exchange": exchange, "app": app}
        db.session.remove()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield info
    finally:
        server.shutdown()
        server.server_close()
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        channel.queue_delete(QUEUE)
        channel.exchange_delete(exchange)
        connection.close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_the_readme_service_example_runs_as_written(served: dict[str, Any]) -> None:
    env = {**os.environ, "IDP_ISSUER": served["issuer"], "ORDERS_CLIENT_ID": served["client_id"],
           "ORDERS_CLIENT_SECRET": served["secret"], "IDP_AMQP_URL": AMQP_URL,
           "IDP_AMQP_EXCHANGE": served["exchange"]}
    process = subprocess.Popen(  # noqa: S603 - the README's own code
        [sys.executable, "-c", readme_example()], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_queue()
        app = served["app"]
        with app.app_context():
            from idp.events.delivery import deliver_due
            from idp.identity.accounts import set_claim
            from idp.identity.audit import Actor
            from idp.identity.models import Account
            from idp.identity.status import disable_account

            account = db.session.get(Account, served["sub"])
            disable_account(account, Actor.admin("admin-1"))
            set_claim(account, "nickname", "ali", "user")
            db.session.commit()
            deliver_due()
            db.session.remove()
        output, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors[-3000:]
    sub = served["sub"]
    lines = output.splitlines()
    assert lines[0] == f"customer {sub} active"
    assert f"account-disabled {sub} []" in lines
    assert f'profile-updated {sub} ["nickname"]' in lines


def wait_for_queue(timeout: float = 30.0) -> None:
    """Until the example consumes from its queue (so it is bound: events published before that
    would not be for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            declared = connection.channel().queue_declare(QUEUE, passive=True)
            if declared.method.consumer_count >= 1:
                return
            time.sleep(0.1)
        except pika.exceptions.ChannelClosedByBroker:
            time.sleep(0.1)
        finally:
            if connection.is_open:
                connection.close()
    raise AssertionError("the example never declared its queue")
