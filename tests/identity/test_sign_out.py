"""The engine's doors that end sessions as a side effect — a merge, a deletion — sign the
relying parties out and kill the session's refresh token, as the admin, the API and the account
centre do (the same `idp.identity.sign_out`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.deletion import erase_account, schedule_deletion
from idp.identity.merge import merge_accounts
from idp.identity.rules import MergeRule, Proof
from idp.identity.sign_out import live_sessions
from idp.models_base import utcnow
from tests.signed_in_device import SignedInDevice


def test_a_merge_signs_the_losers_devices_out__backchannel_logout_2_5(
    app: Flask, make_user: Any, make_client: Any, backchannel_receiver: Any
) -> None:
    survivor = make_user(phone="+8613800138011")
    survivor.created_at = utcnow() - timedelta(days=10)
    loser = make_user(phone="+8613800138012")
    db.session.commit()
    device = SignedInDevice.start(app, "+8613800138012", make_client, backchannel_receiver)
    merge_accounts(survivor, loser, rule=MergeRule.ADMIN_DECISION,
                   proof=Proof.admin("same person"), actor=Actor.admin(survivor.id))
    device.assert_signed_out(backchannel_receiver)
    assert live_sessions(loser) == []


@pytest.mark.parametrize("deletion", [
    lambda account: schedule_deletion(account, Actor.user(account.id)),
    lambda account: erase_account(account, Actor.admin(account.id)),
], ids=["scheduled", "erased"])
def test_deletion_signs_every_device_out__backchannel_logout_2_5(
    app: Flask, make_user: Any, make_client: Any, backchannel_receiver: Any,
    deletion: Callable[[Any], object],
) -> None:
    account = make_user(phone="+8613800138013")
    device = SignedInDevice.start(app, "+8613800138013", make_client, backchannel_receiver)
    assert [row.id for row in live_sessions(account)] == [device.sid]
    deletion(account)
    device.assert_signed_out(backchannel_receiver)
    db.session.expire_all()
    assert live_sessions(account) == []
