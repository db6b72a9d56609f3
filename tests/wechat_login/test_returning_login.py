"""The mini-program login of a returning user (CONTRACT §5), cut to what it needs (issue 25):
one indexed lookup, the login's writes in one round trip (PostgreSQL), one commit with the
tokens, and WeChat reached over a kept-alive connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from idp.accounts.models import LoginEvent
from idp.extensions import db
from idp.identity.models import Identity, IdentityKind
from idp.wechat.fake import FakeWeChatControl, FakeWeChatServer
from idp.wechat_login.session_keys import session_key_of
from tests.wechat.loopback_http import LoopbackServer, relay_to

from .conftest import MINI_APPID, exchange, mini_login

NOT_THE_GRANTS = ("FROM oauth_client", "FROM signing_key", "INTO usage_count")


@contextmanager
def statements_sent() -> Iterator[list[str]]:
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The client's authentication, the signing keys and the usage counters are the token
        # endpoint's, not the grant's (their caches and batching are not this test's subject).
        if not any(table in statement for table in NOT_THE_GRANTS):
            sent.append(statement.lstrip().split(None, 1)[0].upper())

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)


def test_returning_login_is_one_lookup_and_one_round_trip_of_writes__rfc8693_2_1(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    mini_login(client, control, mini_client, "alice")  # creates the account
    mini_login(client, control, mini_client, "alice")  # warms the per-process copies
    with statements_sent() as sent:
        mini_login(client, control, mini_client, "alice")
    reads = [verb for verb in sent if verb == "SELECT"]
    writes = [verb for verb in sent if verb in ("INSERT", "UPDATE", "WITH")]
    assert len(reads) == 1, sent  # the identities with their account (and its second factor)
    if db.engine.dialect.name == "postgresql":
        # One round trip at the commit: the ids' last use, the session key, the login record,
        # the refresh token and the record of the claims this client received (issue 28,
        # `idp.oidc.releases`), staged together (`idp.extensions.stage_write`); the lookup
        # before it ran alone, so the writes are a transaction of their own (no BEGIN).
        assert writes == ["WITH"], sent
    else:
        assert len(writes) == 5, sent  # SQLite, in-process: the same writes one by one


def test_returning_login_records_the_login_the_session_key_and_the_ids_use(
    app: Flask, client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    mini_login(client, control, mini_client, "alice")
    mini_login(client, control, mini_client, "alice")
    first_use = _last_use(IdentityKind.WECHAT_OPENID)
    issued = control.issue_js_code(MINI_APPID, user="alice")
    assert exchange(client, mini_client, issued.code).status_code == 200
    with app.app_context():
        logins = db.session.scalars(sa.select(LoginEvent)).all()
        assert [(login.channel, login.client_id) for login in logins] == [
            ("miniprogram", mini_client.client_id)
        ] * 3
        assert session_key_of(MINI_APPID, issued.openid) == issued.session_key
    assert _last_use(IdentityKind.WECHAT_OPENID) > first_use
    assert _last_use(IdentityKind.WECHAT_UNIONID) > first_use


def test_logins_reach_wechat_over_one_kept_alive_connection(
    app: Flask,
    client: FlaskClient,
    fake_wechat: FakeWeChatServer,
    control: FakeWeChatControl,
    mini_client: Any,
) -> None:
    # The fake closes every connection (werkzeug): a keep-alive front passes the calls on.
    with LoopbackServer(respond=relay_to(fake_wechat.base_url)) as wechat:
        app.config["IDP_WECHAT_API_BASE"] = wechat.base_url
        for _ in range(4):
            mini_login(client, control, mini_client, "alice")
    assert [seen.request_line.split("?")[0] for seen in wechat.seen] == [
        "GET /sns/jscode2session"
    ] * 4
    assert len(set(wechat.ports())) == 1  # one connection for the four logins


def _last_use(kind: str) -> Any:
    db.session.rollback()
    return db.session.scalars(sa.select(Identity.last_used_at).where(Identity.kind == kind)).one()
