"""One WeChat user, one account: the unionid joins apps; openids stay per appid."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.models import Account, Identity, IdentityKind
from idp.wechat.fake import FakeWeChatControl
from tests.oidc.helpers import id_token_claims

from .conftest import (
    MINI_APPID,
    MINI_SECRET,
    OTHER_MINI_APPID,
    WEB_APPID,
    mini_login,
    scan_qr,
)


def sub_of(browser: FlaskClient, tokens: dict[str, Any]) -> str:
    return str(id_token_claims(browser, tokens["id_token"])["sub"])


def wechat_ids(account_id: str) -> set[tuple[str, str, str]]:
    rows = db.session.scalars(sa.select(Identity).where(Identity.account_id == account_id))
    return {
        (row.kind, row.namespace, row.value)
        for row in rows
        if row.kind in (IdentityKind.WECHAT_OPENID, IdentityKind.WECHAT_UNIONID)
    }


def test_same_unionid_from_two_mini_programs_is_one_account(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, other_mini_client: Any
) -> None:
    first = mini_login(client, control, mini_client, "alice")
    second = mini_login(client, control, other_mini_client, "alice")
    sub = sub_of(client, first)
    assert sub_of(client, second) == sub
    openids = {value for kind, _ns, value in wechat_ids(sub) if kind == "wechat_openid"}
    namespaces = {ns for kind, ns, _value in wechat_ids(sub) if kind == "wechat_openid"}
    assert len(openids) == 2 and namespaces == {MINI_APPID, OTHER_MINI_APPID}
    # Each client sees only its own app's openid (CONTRACT §7).
    first_claims = id_token_claims(client, first["id_token"])
    second_claims = id_token_claims(client, second["id_token"])
    assert first_claims["wechat_openid"] != second_claims["wechat_openid"]
    assert first_claims["wechat_unionid"] == second_claims["wechat_unionid"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 1


def test_mini_program_and_website_login_share_the_account(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    control.next_qr_user(WEB_APPID, user="alice")
    browser = client.application.test_client()
    choice = browser.get(scan_qr(browser))
    assert choice.headers["Location"].endswith("/login/wechat/choose")
    from tests.conftest import csrf_token

    page = browser.get("/login/wechat/choose").get_data(as_text=True)
    browser.post("/login/wechat/create", data={"csrf_token": csrf_token(page)})
    (website_account,) = db.session.scalars(sa.select(Account)).all()

    tokens = mini_login(client, control, mini_client, "alice")
    assert sub_of(client, tokens) == website_account.id
    namespaces = {ns for kind, ns, _ in wechat_ids(website_account.id) if kind == "wechat_openid"}
    assert namespaces == {WEB_APPID, MINI_APPID}


def test_app_that_starts_returning_a_unionid_attaches_it(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any
) -> None:
    control.register_app(MINI_APPID, MINI_SECRET, kind="miniprogram", unionid_bound=False)
    before = mini_login(client, control, mini_client, "alice")
    sub = sub_of(client, before)
    assert "wechat_unionid" not in id_token_claims(client, before["id_token"])
    assert {kind for kind, _ns, _v in wechat_ids(sub)} == {"wechat_openid"}

    # The operator binds the mini-program to the Open Platform account.
    control.register_app(MINI_APPID, MINI_SECRET, kind="miniprogram", unionid_bound=True)
    after = mini_login(client, control, mini_client, "alice")
    assert sub_of(client, after) == sub
    assert id_token_claims(client, after["id_token"])["wechat_unionid"]
    assert {kind for kind, _ns, _v in wechat_ids(sub)} == {"wechat_openid", "wechat_unionid"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 1


def test_openid_account_and_unionid_account_merge_when_wechat_joins_them(
    client: FlaskClient, control: FakeWeChatControl, mini_client: Any, other_mini_client: Any
) -> None:
    """An unbound app made an openid-only account; another app made a unionid account for the
    same person. When the first app starts reporting the unionid, the two become one."""
    control.register_app(MINI_APPID, MINI_SECRET, kind="miniprogram", unionid_bound=False)
    openid_only = sub_of(client, mini_login(client, control, mini_client, "alice"))
    with_unionid = sub_of(client, mini_login(client, control, other_mini_client, "alice"))
    assert openid_only != with_unionid

    control.register_app(MINI_APPID, MINI_SECRET, kind="miniprogram", unionid_bound=True)
    joined = sub_of(client, mini_login(client, control, mini_client, "alice"))
    assert joined == openid_only  # the older account survives
    assert sub_of(client, mini_login(client, control, other_mini_client, "alice")) == joined
    survivor = db.session.get(Account, joined)
    assert survivor is not None and survivor.is_active
    assert {ns for kind, ns, _ in wechat_ids(joined) if kind == "wechat_openid"} == {
        MINI_APPID,
        OTHER_MINI_APPID,
    }
