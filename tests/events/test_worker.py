"""Who delivers: `idp worker` (production) or the embedded thread (never under tests)."""

from __future__ import annotations

from typing import Any

from idp.events.models import DeliveryStatus, EventDelivery
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.merge import merge_accounts
from idp.identity.rules import MergeRule, Proof
from tests.events.conftest import grant_everyone
from tests.identity.conftest import age


def test_idp_worker_once_delivers_what_is_due(
    app: Any, make_user: Any, make_client: Any, receiver: Any
) -> None:
    make_client(name="Subscriber", events_uri=receiver.url)
    loser = make_user()
    grant_everyone(loser)
    merge_accounts(age(make_user(), 10), loser, rule=MergeRule.ADMIN_DECISION,
                   proof=Proof.admin("test"), actor=Actor.admin("a"))

    result = app.test_cli_runner().invoke(args=["worker", "--once"])

    assert result.exit_code == 0, result.output
    assert "1 deliveries attempted" in result.output
    db.session.expire_all()
    assert db.session.query(EventDelivery).one().status == DeliveryStatus.DELIVERED
    assert len(receiver.received) == 1


def test_no_embedded_delivery_thread_under_tests(app: Any, client: Any) -> None:
    import threading

    client.get("/healthz")
    assert "idp-event-delivery" not in {thread.name for thread in threading.enumerate()}


def test_the_embedded_thread_starts_with_the_first_request_outside_tests(
    app_config: dict[str, Any], monkeypatch: Any
) -> None:
    """Not at create_app (commands such as `idp db upgrade` never start one), and only once."""
    import threading

    from idp import create_app
    from idp.maintenance import worker

    started: list[Any] = []
    scheduled: list[Any] = []
    monkeypatch.setattr(worker, "run_worker", lambda app, stop, *_: started.append(app))
    # The scheduled jobs start beside it; a real one would outlive the test and write to the
    # database the next tests use.
    monkeypatch.setattr(worker, "start_scheduler", lambda app, stop: scheduled.append(app))
    application = create_app({**app_config, "TESTING": False})
    assert started == []
    with application.app_context():
        db.create_all()
    browser = application.test_client()
    browser.get("/healthz")
    browser.get("/healthz")
    for thread in threading.enumerate():
        if thread.name == "idp-event-delivery":
            thread.join(timeout=5)
    application.extensions["idp_embedded_worker_stop"].set()
    dispose(application)
    assert started == [application] and scheduled == [application]


def test_external_delivery_starts_no_thread(app_config: dict[str, Any], monkeypatch: Any) -> None:
    from idp import create_app
    from idp.maintenance import worker

    started: list[Any] = []
    monkeypatch.setattr(worker, "run_worker", lambda app, stop, *_: started.append(app))
    monkeypatch.setattr(worker, "start_scheduler", lambda app, stop: started.append(app))
    monkeypatch.setenv("IDP_EVENT_DELIVERY", "external")
    application = create_app({**app_config, "TESTING": False})
    with application.app_context():
        db.create_all()
    application.test_client().get("/healthz")
    dispose(application)
    assert started == []


def dispose(application: Any) -> None:
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
