"""The README lists every `channel` an account event may carry (issue 23 item 14: events said
`miniprogram`, `website` and `account_centre`, which it did not list)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from idp.accounts.registration import sign_in_with_proven_phone
from idp.events.models import EventDelivery
from idp.extensions import db
from idp.wechat_login import miniprogram, official_account, website
from tests.api.conftest import Service

README = Path(__file__).resolve().parents[2] / "README.md"
# Blueprints that answer without changing an account, so never name an event's channel.
CHANGE_NOTHING = {"health", "i18n", "observability"}


def readme_channels() -> set[str]:
    text = " ".join(README.read_text().split())
    paragraph = re.search(r"Every event body names `sub`.*?Events are written", text)
    assert paragraph, "the README's paragraph on event bodies moved"
    return set(re.findall(r"`([a-z_]+)`", paragraph.group(0))) - {"sub", "actor", "channel"}


def test_the_readme_lists_every_door_an_event_comes_through__issue23_14(app: Any) -> None:
    listed = readme_channels()
    assert set(app.blueprints) - CHANGE_NOTHING <= listed
    # How an account came to be: the channels the WeChat sign-ins create accounts through.
    assert {miniprogram.CHANNEL, website.CHANNEL, official_account.CHANNEL} <= listed


def test_the_channels_events_carry_are_the_readmes__issue23_14(
    app: Any, service: Service, make_user: Any
) -> None:
    """Real changes through the API, the command line's factory and the SMS sign-in, with a
    broker configured so that every event is queued (never sent: delivery is external)."""
    app.config.update(IDP_AMQP_URL="amqp://guest:guest@127.0.0.1:1/",
                      IDP_EVENT_DELIVERY="external")
    created = service.call("POST", "/accounts", json={"phone": "+8613800138001"})
    assert created.status_code == 201
    make_user(phone="+8613800138002")
    sign_in_with_proven_phone("+8613800138003")
    db.session.commit()
    carried = set()
    for row in db.session.query(EventDelivery).all():
        for body in json.loads(row.payload)["events"].values():
            carried.add(body["channel"])
    assert {"api", "admin", "website"} <= carried
    assert carried <= readme_channels()
