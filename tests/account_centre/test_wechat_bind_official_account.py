# ruff: noqa: F811 - the WeChat fixtures are imported from tests/wechat_login/conftest.py
"""Binding WeChat from the account centre inside WeChat's own browser, through the Official
Account's web authorization (网页授权, snsapi_base) against the fake WeChat on loopback: the same
outcomes as the QR bind (link, already, merge offer, refusal without a unionid), one state per
flow, spent once and bound to this browser and account."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from idp.extensions import db
from idp.identity.accounts import create_account, find_account, link_identity, set_claim
from idp.identity.audit import Actor
from idp.identity.claims import profile_values
from idp.identity.models import (
    Account,
    AccountStatus,
    AuditEvent,
    IdentityKind,
    LoginSession,
    MergeRecord,
)
from idp.wechat.apps import create_wechat_app
from idp.wechat.fake import FakeWeChatControl
from tests.account_centre.conftest import post_form, start_wechat_bind
from tests.wechat_login.conftest import (  # noqa: F401 - fixtures
    WEB_APPID,
    app_config,
    control,
    wechat_apps,
)

OA_APPID = "wxc0000000000000b1"
OA_SECRET = "oa-secret-bind-00112233445566778"
OA_NAME = "服务号"
WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
IN_WECHAT = {"User-Agent": WECHAT_UA}
CALLBACK = "/account/ways/wechat/callback"


@pytest.fixture
def official_account(control: FakeWeChatControl, wechat_apps: None) -> str:
    """Both apps registered: the website's (QR) and the Official Account."""
    control.register_app(OA_APPID, OA_SECRET, kind="officialaccount")
    create_wechat_app("officialaccount", OA_APPID, OA_SECRET, name=OA_NAME)
    return OA_APPID


@pytest.fixture
def official_account_without_unionid(app: Flask, control: FakeWeChatControl) -> str:
    """Only an Official Account, not on the Open Platform: WeChat reports no unionid."""
    control.register_app(OA_APPID, OA_SECRET, kind="officialaccount", unionid_bound=False)
    create_wechat_app("officialaccount", OA_APPID, OA_SECRET, name=OA_NAME)
    return OA_APPID


def _callback_url(browser: FlaskClient) -> str:
    """"Add WeChat" inside WeChat, and WeChat's silent redirect back: the callback URL, not
    yet visited."""
    start = start_wechat_bind(browser, IN_WECHAT)
    assert start.status_code == 303, start.status_code
    answer = requests.get(start.headers["Location"], headers=IN_WECHAT, allow_redirects=False,
                          timeout=5)
    assert answer.status_code == 302, answer.text[:300]
    location = urlsplit(answer.headers["Location"])
    assert location.path == CALLBACK
    return f"{location.path}?{location.query}"


def _bind(browser: FlaskClient) -> Any:
    return browser.get(_callback_url(browser), headers=IN_WECHAT)


def _flash(browser: FlaskClient) -> str:
    return browser.get("/account/security", headers=IN_WECHAT).get_data(as_text=True)


def _oa_owner(openid: str) -> Account | None:
    return find_account(IdentityKind.WECHAT_OPENID, openid, OA_APPID)


def _other_account_holding(unionid: str | None = None, openid: str | None = None) -> Account:
    actor = Actor.system("test")
    other = create_account(actor, "officialaccount")
    if unionid:
        link_identity(other, IdentityKind.WECHAT_UNIONID, unionid, actor, verified=True,
                      proof="wechat_login")
    if openid:
        link_identity(other, IdentityKind.WECHAT_OPENID, openid, actor, namespace=OA_APPID,
                      verified=True, proof="wechat_login")
    db.session.commit()
    return other


# --- which way is offered -----------------------------------------------------------------------


def test_inside_wechat_the_official_account_is_offered__outside_the_qr_code(
    app: Flask, signed_in: FlaskClient, official_account: str, fake_wechat: Any
) -> None:
    inside = signed_in.get("/account/security", headers=IN_WECHAT).get_data(as_text=True)
    assert 'id="bind-wechat" data-via="officialaccount"' in inside
    outside = signed_in.get("/account/security").get_data(as_text=True)
    assert 'id="bind-wechat" data-via="website"' in outside

    start = start_wechat_bind(signed_in, IN_WECHAT).headers["Location"]
    parts = urlsplit(start)
    assert parts.path == "/connect/oauth2/authorize" and parts.fragment == "wechat_redirect"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query["appid"] == OA_APPID and query["scope"] == "snsapi_base"
    assert query["redirect_uri"] == "http://127.0.0.1:5000" + CALLBACK
    qr = urlsplit(start_wechat_bind(signed_in).headers["Location"])
    assert qr.path == "/connect/qrconnect" and parse_qs(qr.query)["appid"] == [WEB_APPID]


def test_only_an_official_account_outside_wechat_explains_where_binding_works(
    app: Flask, signed_in: FlaskClient, official_account_without_unionid: str
) -> None:
    page = signed_in.get("/account/security").get_data(as_text=True)
    assert 'id="bind-wechat"' not in page
    assert 'id="bind-wechat-elsewhere"' in page and "open this page in WeChat" in page
    refused = signed_in.get("/account/ways/wechat")
    assert refused.status_code == 302 and refused.headers["Location"] == "/account/security"
    assert "open this page in WeChat" in _flash(signed_in)
    signed_in.get("/locale/zh_CN?next=/account/security")
    assert "请在微信中打开此页面" in signed_in.get("/account/security").get_data(as_text=True)


def test_only_the_website_app_inside_wechat_explains_where_binding_works(
    app: Flask, signed_in: FlaskClient, wechat_apps: None
) -> None:
    page = signed_in.get("/account/security", headers=IN_WECHAT).get_data(as_text=True)
    assert 'id="bind-wechat"' not in page and "open this page in another browser" in page
    refused = signed_in.get("/account/ways/wechat", headers=IN_WECHAT)
    assert refused.status_code == 302
    assert "open this page in another browser" in _flash(signed_in)


def test_no_wechat_app_no_offer(app: Flask, signed_in: FlaskClient) -> None:
    page = signed_in.get("/account/security", headers=IN_WECHAT).get_data(as_text=True)
    assert 'id="bind-wechat' not in page
    assert signed_in.get("/account/ways/wechat", headers=IN_WECHAT).status_code == 404


# --- the outcomes, as the QR bind's -------------------------------------------------------------


def test_bind_links_the_official_account_openid_and_unionid__wechat_snsapi_base(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    who = control.set_browser_user(OA_APPID, user="olga", nickname="Olga")
    response = _bind(signed_in)
    assert response.status_code == 302 and response.headers["Location"] == "/account/security"
    assert _oa_owner(who.openid).id == user.id
    assert find_account(IdentityKind.WECHAT_UNIONID, who.unionid).id == user.id
    assert control.calls("/sns/userinfo") == []  # silent: snsapi_base asks for no profile
    page = _flash(signed_in)
    assert "WeChat added" in page
    assert "WeChat (Official Account)" in page and OA_NAME in page  # the app's name
    links = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "identity.link", AuditEvent.account_id == user.id,
        AuditEvent.details["namespace"].as_string() == OA_APPID)).all()
    assert [(e.actor_type, e.actor_id) for e in links] == [("user", user.id)]


def test_audit_entries_are_those_of_the_qr_bind(
    app: Flask, client: FlaskClient, make_user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    from tests.account_centre.test_wechat_bind import _scan
    from tests.conftest import login

    def trail(account_id: str) -> list[tuple[str, str, str | None, str]]:
        rows = db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.account_id == account_id, AuditEvent.action == "identity.link",
            AuditEvent.details["kind"].as_string().like("wechat%")).order_by(AuditEvent.id))
        return [(e.action, e.actor_type, e.reason, e.details["kind"]) for e in rows]

    by_qr, by_oa = make_user(phone="+8613800138001"), make_user(phone="+8613800138002")
    qr_browser = app.test_client()
    login(qr_browser, "+8613800138001")
    control.next_qr_user(WEB_APPID, user="quinn", unionid="u-quinn")
    _scan(qr_browser)
    oa_browser = app.test_client()
    login(oa_browser, "+8613800138002")
    control.set_browser_user(OA_APPID, user="otto", unionid="u-otto")
    _bind(oa_browser)
    assert trail(by_qr.id) == trail(by_oa.id) != []


def test_bind_without_unionid_links_the_openid_alone(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account_without_unionid: str,
) -> None:
    who = control.set_browser_user(OA_APPID, user="nora")
    assert who.unionid is None
    _bind(signed_in)
    assert _oa_owner(who.openid).id == user.id
    kinds = {i.kind for i in db.session.get(Account, user.id).identities}
    assert IdentityKind.WECHAT_UNIONID not in kinds
    assert "WeChat added" in _flash(signed_in)


def test_already_bound_says_so(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    control.set_browser_user(OA_APPID, user="olga")
    _bind(signed_in)
    _flash(signed_in)
    links = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "identity.link"))
    assert _bind(signed_in).status_code == 302
    assert "already one of your ways in" in _flash(signed_in)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "identity.link")) == links


def test_unionid_held_already_gains_the_official_account_openid(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    """Bound by the QR code before (same unionid): the Official Account's openid joins, so the
    ways-in list shows it by the app's name."""
    control.next_qr_user(WEB_APPID, user="olga", unionid="u-olga")
    from tests.account_centre.test_wechat_bind import _scan

    _scan(signed_in)
    who = control.set_browser_user(OA_APPID, user="olga", unionid="u-olga")
    _bind(signed_in)
    assert _oa_owner(who.openid).id == user.id
    assert OA_NAME in _flash(signed_in)


def test_silent_bind_keeps_the_nickname_wechat_gave_before(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    set_claim(db.session.get(Account, user.id), "nickname", "Olga from WeChat", "wechat")
    db.session.commit()
    control.set_browser_user(OA_APPID, user="olga")
    _bind(signed_in)
    assert profile_values(db.session.get(Account, user.id))["nickname"] == (
        "Olga from WeChat", "wechat")


def test_wechat_of_another_account_offers_the_merge_then_merges__rule_same_wechat_unionid(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    who = control.set_browser_user(OA_APPID, user="otis")
    other = _other_account_holding(unionid=who.unionid, openid=who.openid)
    response = _bind(signed_in)
    assert response.headers["Location"] == "/account/ways/wechat/merge"
    preview = signed_in.get("/account/ways/wechat/merge").get_data(as_text=True)
    assert user.id in preview and 'id="confirm-merge"' in preview
    assert OA_NAME in preview  # what moves, by the app's name
    assert db.session.get(Account, other.id).status == AccountStatus.ACTIVE  # nothing yet
    merged = post_form(signed_in, "/account/ways/wechat/merge")
    assert merged.status_code == 303
    db.session.expire_all()
    assert db.session.get(Account, other.id).status == AccountStatus.MERGED
    record = db.session.scalars(sa.select(MergeRecord)).one()
    assert (record.survivor_id, record.rule) == (user.id, "same_wechat_unionid")
    assert _oa_owner(who.openid).id == user.id
    with signed_in.session_transaction() as session:
        sid = session["idp_sid"]
    assert db.session.get(LoginSession, sid).channel == "officialaccount"
    assert "now one" in _flash(signed_in)


def test_without_unionid_the_merge_is_refused_with_the_reason(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account_without_unionid: str,
) -> None:
    who = control.set_browser_user(OA_APPID, user="ned")
    other = _other_account_holding(openid=who.openid)
    assert _bind(signed_in).headers["Location"] == "/account/ways/wechat/merge"
    preview = signed_in.get("/account/ways/wechat/merge").get_data(as_text=True)
    assert 'id="confirm-merge"' not in preview and "An admin can merge them" in preview
    # No button to press; a hand-made POST is refused all the same.
    refused = post_form(signed_in, "/account/security", "/account/ways/wechat/merge")
    assert refused.status_code == 303
    assert "An admin can merge them" in _flash(signed_in)
    db.session.expire_all()
    assert db.session.get(Account, other.id).status == AccountStatus.ACTIVE
    assert _oa_owner(who.openid).id == other.id
    assert db.session.scalars(sa.select(MergeRecord)).all() == []


# --- the state ----------------------------------------------------------------------------------


def test_a_replayed_callback_binds_nothing__state_single_use(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    who = control.set_browser_user(OA_APPID, user="olga")
    callback = _callback_url(signed_in)
    signed_in.get(callback)
    identity = next(i for i in db.session.get(Account, user.id).identities
                    if i.namespace == OA_APPID)
    post_form(signed_in, "/account/security", f"/account/ways/{identity.id}/unbind")
    assert _oa_owner(who.openid) is None
    replay = signed_in.get(callback)
    assert replay.status_code == 302 and "expired" in _flash(signed_in)
    assert _oa_owner(who.openid) is None


def test_a_sign_in_state_is_refused_at_the_bind_callback_and_back(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    who = control.set_browser_user(OA_APPID, user="olga")
    # A sign-in round's state, carried to the bind callback.
    sign_in = signed_in.get("/login/wechat/oa", headers=IN_WECHAT).headers["Location"]
    answer = requests.get(sign_in, headers=IN_WECHAT, allow_redirects=False, timeout=5)
    query = urlsplit(answer.headers["Location"]).query
    assert signed_in.get(f"{CALLBACK}?{query}").status_code == 302
    assert "expired" in _flash(signed_in) and _oa_owner(who.openid) is None
    # A bind round's state, carried to the sign-in callback.
    bind_query = urlsplit(_callback_url(signed_in)).query
    assert signed_in.get(f"/login/wechat/oa/callback?{bind_query}").status_code == 400
    assert _oa_owner(who.openid) is None and find_account(
        IdentityKind.WECHAT_UNIONID, who.unionid) is None


def test_a_qr_sign_in_state_is_refused_at_the_bind_callback(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    who = control.next_qr_user(WEB_APPID, user="quentin", unionid="u-quentin")
    start = signed_in.get("/login/wechat").headers["Location"]
    answer = requests.get(start, allow_redirects=False, timeout=5)
    query = urlsplit(answer.headers["Location"]).query
    assert signed_in.get(f"{CALLBACK}?{query}").status_code == 302
    assert "expired" in _flash(signed_in)
    assert find_account(IdentityKind.WECHAT_OPENID, who.openid, WEB_APPID) is None


def test_a_state_of_another_browser_or_account_is_refused(
    app: Flask, signed_in: FlaskClient, make_user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    from tests.conftest import login

    who = control.set_browser_user(OA_APPID, user="olga")
    callback = _callback_url(signed_in)
    make_user(phone="+8613800138009")
    other = app.test_client()
    login(other, "+8613800138009")
    assert other.get(callback).status_code == 302
    assert "expired" in _flash(other) and _oa_owner(who.openid) is None
    # The first browser's state was not spent by the other's attempt.
    signed_in.get(callback)
    assert _oa_owner(who.openid) is not None


def test_a_state_issued_before_signing_out_binds_nothing(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    who = control.set_browser_user(OA_APPID, user="olga")
    callback = _callback_url(signed_in)
    post_form(signed_in, "/account/security", "/logout")
    response = signed_in.get(callback)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/account/security")
    assert "code=" not in response.headers["Location"]  # the code does not ride along
    assert _oa_owner(who.openid) is None


def test_a_signed_out_visitor_is_sent_to_sign_in(
    app: Flask, client: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    who = control.set_browser_user(OA_APPID, user="olga")
    response = client.get(f"{CALLBACK}?code=whatever&state=whatever", headers=IN_WECHAT)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/account/security"
    assert control.calls("/sns/oauth2/access_token") == []
    assert _oa_owner(who.openid) is None


@pytest.mark.parametrize("query", ["code=a&code=b&state=s", "code=a&state=s&state=t"])
def test_repeated_parameters_are_400(
    app: Flask, signed_in: FlaskClient, official_account: str, query: str
) -> None:
    assert signed_in.get(f"{CALLBACK}?{query}").status_code == 400


def test_refused_or_broken_answers_are_explained(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    state = parse_qs(urlsplit(_callback_url(signed_in)).query)["state"][0]
    # Without a code (WeChat said no): the state is spent, nothing bound.
    assert signed_in.get(f"{CALLBACK}?state={state}").status_code == 302
    assert "the sign-in was cancelled" in _flash(signed_in)
    forged_state = parse_qs(urlsplit(_callback_url(signed_in)).query)["state"][0]
    assert signed_in.get(f"{CALLBACK}?code=forged&state={forged_state}").status_code == 302
    assert "did not answer as expected" in _flash(signed_in)
    assert [i.kind for i in db.session.get(Account, user.id).identities
            if i.kind.startswith("wechat")] == []


def test_a_unionid_nobody_holds_proves_nothing_about_the_other_account(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    """The other account holds the Official Account's openid from before the Open Platform
    binding; WeChat now reports a unionid that neither account holds: no rule, no merge."""
    who = control.set_browser_user(OA_APPID, user="odile")
    assert who.unionid
    other = _other_account_holding(openid=who.openid)
    assert _bind(signed_in).headers["Location"] == "/account/ways/wechat/merge"
    preview = signed_in.get("/account/ways/wechat/merge").get_data(as_text=True)
    assert 'id="confirm-merge"' not in preview and "An admin can merge them" in preview
    post_form(signed_in, "/account/security", "/account/ways/wechat/merge")
    db.session.expire_all()
    assert db.session.get(Account, other.id).status == AccountStatus.ACTIVE
    assert find_account(IdentityKind.WECHAT_UNIONID, who.unionid) is None


def test_openid_held_elsewhere_and_unionid_here_offers_the_merge(
    app: Flask, signed_in: FlaskClient, user: Any, control: FakeWeChatControl,
    official_account: str,
) -> None:
    """This account holds the unionid (bound by the QR code), another the Official Account's
    openid: WeChat just said both are one user, so the merge is offered, not "already"."""
    from tests.account_centre.test_wechat_bind import _scan

    control.next_qr_user(WEB_APPID, user="oscar", unionid="u-oscar")
    _scan(signed_in)
    who = control.set_browser_user(OA_APPID, user="oscar", unionid="u-oscar")
    other = _other_account_holding(openid=who.openid)
    assert _bind(signed_in).headers["Location"] == "/account/ways/wechat/merge"
    assert post_form(signed_in, "/account/ways/wechat/merge").status_code == 303
    db.session.expire_all()
    assert db.session.get(Account, other.id).status == AccountStatus.MERGED
    assert _oa_owner(who.openid).id == user.id


# --- re-authentication with WeChat inside WeChat --------------------------------------------------


def test_reauth_inside_wechat_goes_through_the_official_account(
    signed_in: FlaskClient, official_account: str
) -> None:
    """A QR code cannot be scanned on the phone that shows it: inside WeChat's browser "sign in
    with WeChat again" is the Official Account's authorization; elsewhere the website's QR."""
    assert _bind(signed_in).status_code in (302, 303)
    inside = signed_in.get("/account/reauth", headers=IN_WECHAT).get_data(as_text=True)
    assert 'id="reauth-wechat" href="/login/wechat/oa?next=' in inside
    outside = signed_in.get("/account/reauth").get_data(as_text=True)
    assert 'id="reauth-wechat" href="/login/wechat?next=' in outside
