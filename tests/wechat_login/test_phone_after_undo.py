"""The mini-program's getPhoneNumber after an admin undid the merge it caused (issue: the next
call with the same phone merged the two again). The undo sticks: the phone API answers 403
`access_denied` and the accounts stay two (idp/identity/rules.py, rule 8)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.merge import undo_merge
from idp.identity.models import Account, AccountStatus, MergeRecord
from idp.wechat.fake import FakeWeChatControl

from .conftest import MINI_APPID, bearer, bind_phone, mini_login


def test_get_phone_number_after_an_undo_does_not_merge_again__contract_6(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, make_user: Any
) -> None:
    website_account = make_user(phone="+8613800138000", name="Alice")
    tokens = mini_login(client, control, mini_client, "alice")
    first = bind_phone(client, tokens["access_token"], {"code": control.issue_phone_code(
        MINI_APPID, "13800138000")})
    assert first.get_json()["merged"] is True
    record = db.session.scalars(sa.select(MergeRecord)).one()
    mini_sub = record.loser_id
    undo_merge(record, Actor.admin(website_account.id))
    # The merge and the undo were a while ago: token cut-offs are whole seconds (tokens.py),
    # and a login within the same second as either would be refused for that reason alone.
    for account in db.session.scalars(sa.select(Account)):
        if account.tokens_valid_after is not None:
            account.tokens_valid_after -= timedelta(seconds=5)
    db.session.commit()

    again = mini_login(client, control, mini_client, "alice")
    response = bind_phone(client, again["access_token"], {"code": control.issue_phone_code(
        MINI_APPID, "13800138000")})

    assert response.status_code == 403, response.get_json()
    assert response.get_json()["error"] == "access_denied"
    db.session.expire_all()
    assert db.session.get(Account, mini_sub).status == AccountStatus.ACTIVE
    assert len(db.session.scalars(sa.select(MergeRecord)).all()) == 1
    userinfo = client.get("/oauth/userinfo", headers=bearer(again["access_token"])).get_json()
    assert userinfo["sub"] == mini_sub
