"""Finding accounts and acting on one: every action, every refusal, every audit event."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.identity.accounts import identities_of, set_claim
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind, LoginSession
from tests.admin.conftest import MINI_APPID, AdminBrowser, audit_of, text_of
from tests.conftest import login
from tests.signed_in_device import SignedInDevice


def _search(admin: AdminBrowser, query: str) -> str:
    response = admin.get("/admin/accounts", query_string={"q": query})
    assert response.status_code == 200
    return text_of(response)


@pytest.mark.parametrize(
    "typed", ["+8613800138000", "138 0013 8000", "+86 138-0013-8000", "008613800138000",
              "(138) 0013 8000"]
)
def test_search_finds_a_phone_typed_in_any_usual_format(
    admin: AdminBrowser, make_user: Any, typed: str
) -> None:
    alice = make_user(phone="+8613800138000", name="Alice")
    other = make_user(phone="+8613800138001")
    html = _search(admin, typed)
    assert alice.id in html and other.id not in html


def test_search_by_uuid_alias_email_name_openid_unionid(
    admin: AdminBrowser, make_user: Any, mini_user: Any
) -> None:
    alice = make_user(phone="+8613800138000", name="Alice Liddell", email="Alice@Example.com")
    wechat = mini_user("o-openid-1", unionid="u-union-1", name="小明")
    queries = [alice.id, alice.id.upper(), "alice@example.com", "ALICE", "ali", "Alice L"]
    if db.engine.dialect.name == "postgresql":
        queries.append("liddell")  # a substring: pg_trgm's index; SQLite matches prefixes only
    for query in queries:
        html = _search(admin, query)
        assert alice.id in html and wechat.id not in html, query
    for query in ("o-openid-1", "u-union-1", "小明"):
        html = _search(admin, query)
        assert wechat.id in html and alice.id not in html, query
    assert "0 accounts" in _search(admin, "nobody-at-all")


def test_search_results_are_paginated(admin: AdminBrowser, make_user: Any) -> None:
    for number in range(23):
        make_user(phone=f"+861370000{number:04d}", name=f"Pager {number}")
    first = _search(admin, "pager")
    assert "23 accounts" in first and "Page 1 of 2" in first
    second = text_of(admin.get("/admin/accounts", query_string={"q": "pager", "page": 2}))
    assert len(re.findall(r'href="/admin/accounts/[0-9a-f-]{36}"', second)) == 3


def test_account_page_shows_claims_with_their_source_and_identities(
    admin: AdminBrowser, make_user: Any
) -> None:
    alice = make_user(phone="+8613800138000", name="Alice", email="alice@example.com")
    set_claim(alice, "name", "Alice L.", "user")
    set_claim(alice, "nickname", "ali", "wechat")
    db.session.commit()
    html = text_of(admin.get(f"/admin/accounts/{alice.id}"))
    assert "Alice L." in html and "edited by the user" in html  # the user's value wins
    # Personal data masked (issue 27 item 3): tests/admin/test_masking.py reveals it.
    assert "138****8000" in html and "a***@example.com" in html
    assert "+8613800138000" not in html and "alice@example.com" not in html
    assert "(credential)" in html  # a password is never shown
    assert "account.create" in html  # the audit trail


def test_disable_asks_first_then_ends_sessions_and_tokens(
    admin: AdminBrowser, make_user: Any, app: Any
) -> None:
    alice = make_user(phone="+8613800138000")
    other_browser = app.test_client()
    login(other_browser, "+8613800138000")
    page = admin.get(f"/admin/accounts/{alice.id}/disable")
    assert "Every IdP session of the account ends now." in text_of(page)
    db.session.expire_all()
    assert db.session.get(Account, alice.id).status == AccountStatus.ACTIVE  # GET changed nothing
    response = admin.submit(f"/admin/accounts/{alice.id}/disable")
    assert response.status_code == 302
    db.session.expire_all()
    account = db.session.get(Account, alice.id)
    assert account.status == AccountStatus.DISABLED and account.tokens_valid_after is not None
    live = db.session.scalars(sa.select(LoginSession).where(
        LoginSession.account_id == alice.id, LoginSession.ended_at.is_(None))).all()
    assert live == []
    assert [e.actor_id for e in audit_of("account.disable")] == [admin.account.id]
    other_browser = app.test_client()
    assert login(other_browser, "+8613800138000").status_code == 200  # refused: form again
    admin.submit(f"/admin/accounts/{alice.id}/enable")
    db.session.expire_all()
    assert db.session.get(Account, alice.id).status == AccountStatus.ACTIVE
    assert len(audit_of("account.enable")) == 1


def test_unlinking_the_last_way_to_log_in_is_refused_and_shown(
    admin: AdminBrowser, mini_user: Any
) -> None:
    lonely = mini_user("o-only-one")
    openid = identities_of(lonely)[0]
    url = f"/admin/accounts/{lonely.id}/identities/{openid.id}/unlink"
    assert "last way to sign in" in text_of(admin.get(url))
    response = admin.submit(url)
    assert response.status_code == 302
    assert "Refused: this is the account's last way to sign in" in text_of(
        admin.get(response.headers["Location"]))
    assert db.session.get(Identity, openid.id) is not None
    assert [e.actor_id for e in audit_of("identity.unlink_refused")] == [admin.account.id]


def test_unlinking_an_identity_that_is_not_the_last(admin: AdminBrowser, make_user: Any) -> None:
    alice = make_user(phone="+8613800138000", email="alice@example.com")
    email = identities_of(alice, IdentityKind.EMAIL)[0]
    admin.submit(f"/admin/accounts/{alice.id}/identities/{email.id}/unlink")
    db.session.expire_all()
    assert identities_of(alice, IdentityKind.EMAIL) == []
    assert [e.actor_type for e in audit_of("identity.unlink")] == ["admin"]


def test_link_an_identity_from_another_account(
    admin: AdminBrowser, make_user: Any, mini_user: Any
) -> None:
    alice = make_user(phone="+8613800138000")
    second = mini_user("o-second", unionid="u-second")  # two ways in: one can move
    page = f"/admin/accounts/{alice.id}"
    confirm = admin.submit(page, {"identifier": "u-second"},
                           action=f"/admin/accounts/{alice.id}/link")
    html = text_of(confirm)
    assert "is unlinked from account" in html and second.id in html
    unionid = identities_of(second, IdentityKind.WECHAT_UNIONID)[0]
    admin.submit(page, {"identifier": "u-second", "identity_id": unionid.id, "confirmed": "yes"},
                 action=f"/admin/accounts/{alice.id}/link")
    db.session.expire_all()
    moved = identities_of(alice, IdentityKind.WECHAT_UNIONID)
    assert [i.value for i in moved] == ["u-second"] and moved[0].verified_by == "admin"
    assert identities_of(second, IdentityKind.WECHAT_UNIONID) == []
    assert len(audit_of("admin.identity_move")) == 1


def test_linking_away_the_other_accounts_last_way_in_is_refused(
    admin: AdminBrowser, make_user: Any, mini_user: Any
) -> None:
    alice = make_user(phone="+8613800138000")
    only = mini_user("o-only")
    openid = identities_of(only)[0]
    page = f"/admin/accounts/{alice.id}"
    response = admin.submit(page, {"identifier": "o-only", "identity_id": openid.id,
                                   "confirmed": "yes"}, action=f"/admin/accounts/{alice.id}/link")
    assert "last way to sign in" in text_of(admin.get(response.headers["Location"]))
    db.session.expire_all()
    assert db.session.get(Identity, openid.id).account_id == only.id


def test_revoke_a_token_then_end_the_session(
    admin: AdminBrowser, make_user: Any, app: Any
) -> None:
    from idp.oidc.clients import create_client
    from idp.oidc.models import RefreshToken
    from tests.conftest import CodeFlow

    alice = make_user(phone="+8613800138000")
    website, secret = create_client(name="Shop", redirect_uris=["https://rp.example/callback"])
    browser = app.test_client()
    login(browser, "+8613800138000")
    tokens = CodeFlow(browser, website, secret).tokens(scope="openid offline_access")
    assert tokens["refresh_token"]
    sid = db.session.scalars(sa.select(LoginSession.id).where(
        LoginSession.account_id == alice.id)).one()
    html = text_of(admin.get(f"/admin/accounts/{alice.id}"))
    assert sid[:8] in html and "Shop" in html
    family = db.session.scalars(sa.select(RefreshToken.family).where(
        RefreshToken.account_id == alice.id)).one()
    confirm = text_of(admin.get(f"/admin/accounts/{alice.id}/tokens/{family[:8]}/revoke"))
    assert "Shop" in confirm
    admin.submit(f"/admin/accounts/{alice.id}/tokens/{family[:8]}/revoke")
    admin.submit(f"/admin/accounts/{alice.id}/sessions/{sid[:8]}/end")
    db.session.expire_all()
    assert db.session.get(LoginSession, sid).ended_at is not None
    assert all(row.revoked_at for row in db.session.scalars(
        sa.select(RefreshToken).where(RefreshToken.account_id == alice.id)))
    ended = audit_of("session.end")
    assert len(ended) == 1 and ended[0].actor_type == "admin"
    assert len(audit_of("admin.token_revoke")) == 1
    assert admin.get(f"/admin/accounts/{alice.id}/sessions/{sid[:8]}/end").status_code == 404


def test_an_admin_ending_a_session_signs_the_relying_parties_out__backchannel_logout_2_5(
    admin: AdminBrowser, make_user: Any, app: Any, make_client: Any, backchannel_receiver: Any
) -> None:
    """The admin's "End session" once ended only the row: relying parties stayed signed in and
    the session's refresh token kept working."""
    alice = make_user(phone="+8613800138000")
    device = SignedInDevice.start(app, "+8613800138000", make_client, backchannel_receiver)
    admin.submit(f"/admin/accounts/{alice.id}/sessions/{device.sid[:8]}/end")
    device.assert_signed_out(backchannel_receiver)


def test_send_a_password_reset_code(admin: AdminBrowser, make_user: Any, app: Any) -> None:
    alice = make_user(phone="+8613800138000")
    assert "138****8000" in text_of(admin.get(f"/admin/accounts/{alice.id}/reset-code"))
    admin.submit(f"/admin/accounts/{alice.id}/reset-code")
    assert app.extensions["idp_sms"].last_code("+8613800138000")
    assert [e.details["phone"] for e in audit_of("admin.reset_code_sent")] == ["+8613800138000"]


def test_no_reset_code_without_a_verified_phone(admin: AdminBrowser, mini_user: Any) -> None:
    wechat = mini_user("o-nophone")
    response = admin.get(f"/admin/accounts/{wechat.id}/reset-code")
    assert response.status_code == 302
    assert audit_of("admin.reset_code_sent") == []


def test_unknown_account_is_404(admin: AdminBrowser) -> None:
    assert admin.get("/admin/accounts/00000000-0000-0000-0000-000000000000").status_code == 404


def test_mini_appid_is_shown(admin: AdminBrowser, mini_user: Any) -> None:
    wechat = mini_user("o-shown")
    assert MINI_APPID in text_of(admin.get(f"/admin/accounts/{wechat.id}"))


def test_account_page_shows_proofs_as_fields_and_names_every_column(
    admin: AdminBrowser, make_user: Any, mini_user: Any
) -> None:
    from idp.identity.audit import Actor
    from idp.identity.merge import merge_accounts
    from idp.identity.rules import MergeRule, Proof

    alice = make_user(phone="+8613800138000")
    mini = mini_user("o-proof")
    merge_accounts(alice, mini, rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("same person"),
                   actor=Actor.admin(admin.account.id))
    db.session.commit()
    html = admin.get(f"/admin/accounts/{alice.id}").get_data(as_text=True)
    assert "{'" not in html and "&#39;" not in html  # no Python dict or list repr
    assert re.search(r"<dt>Proof</dt><dd>admin decision</dd>", html), html
    assert re.search(r"<dt>Note</dt><dd>same person</dd>", html)
    headers = re.findall(r"<th[^>]*>(.*?)</th>", html, re.S)
    assert headers and all(re.sub(r"<[^>]+>", "", h).strip() for h in headers), headers
    regions = re.findall(r'<div class="scroll[^"]*"([^>]*)>', html)
    assert regions and all('role="region"' in r and 'tabindex="0"' in r and "aria-label" in r
                           for r in regions), regions
