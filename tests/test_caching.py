"""The per-process caches of the hot paths (idp/caching.py): bounded, keyed by identifiers
only, and invalidated by every change to what they hold — revocation, disabling, profile
edits, phone changes, merges — including changes made by another process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from idp import caching
from idp.caching import BoundedCache, FileVersions
from idp.identity import claims as claims_module
from idp.oidc import tokens as tokens_module
from tests.conftest import CodeFlow, query_of, statements_of


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache: BoundedCache[int] = BoundedCache(max_entries=3)
    for key in "abc":
        cache.put(key, (1, 0, 0), ord(key))
    assert cache.get("a", (1, 0, 0)) == ord("a")  # now the most recent
    cache.put("d", (1, 0, 0), 4)
    assert len(cache) == 3
    assert cache.get("b", (1, 0, 0)) is None  # the least recently used went
    assert cache.get("a", (1, 0, 0)) == ord("a")


def test_an_entry_serves_only_its_versions_and_only_until_its_age() -> None:
    cache: BoundedCache[str] = BoundedCache(max_entries=10, max_age=0.0)
    cache.put("k", (1, 2, 3), "v")
    assert cache.get("k", (1, 2, 3)) is None  # too old at once
    cache = BoundedCache(max_entries=10)
    cache.put("k", (1, 2, 3), "v")
    assert cache.get("k", (1, 2, 4)) is None  # the token's version moved on
    assert cache.get("k", (1, 2, 3)) is None  # and the stale entry is gone


def test_file_versions_are_shared_by_the_processes_of_a_host(tmp_path: Path) -> None:
    path = tmp_path / "cache-versions"
    here = FileVersions(path)
    before = here.read("account-1", "jti-1")
    assert before is not None and before[0] != 0  # a random start: a new file invalidates all
    bump = (
        "import sys; from pathlib import Path; from idp.caching import FileVersions;"
        "FileVersions(Path(sys.argv[1])).bump(['account-1'], [], False)"
    )
    subprocess.run([sys.executable, "-c", bump, str(path)], check=True, timeout=60)
    after = here.read("account-1", "jti-1")
    assert after is not None
    assert after[1] == before[1] + 1 and after[0] == before[0] and after[2] == before[2]
    assert here.read("account-2", "jti-1") == (before[0], 0, before[2])


def cached_keys() -> str:
    entries = [*tokens_module.TOKEN_STATES._entries, *claims_module.CLAIMS._entries]
    return repr(entries)


def test_userinfo_is_served_from_the_cache_without_sql_and_no_token_is_a_key(
    app: Any, flow: CodeFlow
) -> None:
    tokens = flow.tokens(scope="openid profile phone")
    assert flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code \
        == 200  # fmt: skip
    answers = []
    statements = statements_of(app, lambda: answers.append(
        flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))))
    assert answers[0].status_code == 200
    # The tests' configuration turns the key and client caches off (IDP_KEY_CACHE_SECONDS=0):
    # what must be gone is the token check and the claims.
    watched = ("account", "identity", "profile_claim", "revoked_access_token")
    assert [s for s in statements if any(f"FROM {table}" in s for table in watched)] == []
    keys = cached_keys()
    for secret in (tokens["access_token"], tokens["refresh_token"], flow.secret or "-"):
        assert secret not in keys
    assert tokens["access_token"].split(".")[2] not in keys  # not even the signature


def test_claims_follow_a_profile_edit_and_a_phone_change_at_once(
    app: Any, flow: CodeFlow, user: Any
) -> None:
    from idp.extensions import db
    from idp.identity.accounts import identities_of, link_identity, set_claim
    from idp.identity.audit import Actor
    from idp.identity.links import unlink_identity
    from idp.identity.models import Account, IdentityKind

    tokens = flow.tokens(scope="openid profile phone")
    seen = flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert seen["name"] == "Alice" and seen["phone_number"] == "+8613800138000"
    with app.app_context():
        account = db.session.get(Account, user.id)
        set_claim(account, "name", "Alice Liddell", "user")
        old_phone = next(i for i in identities_of(account) if i.kind == IdentityKind.PHONE)
        link_identity(account, IdentityKind.PHONE, "+8613900139999", Actor.user(account.id),
                      verified=True, proof="sms")  # fmt: skip
        db.session.commit()
        unlink_identity(old_phone, Actor.user(account.id))
        db.session.commit()
    now = flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert now["name"] == "Alice Liddell"
    assert now["phone_number"] == "+8613900139999"


def test_a_disabled_account_and_a_revoked_token_are_refused_at_once__rfc7009_2(
    app: Any, flow: CodeFlow, user: Any
) -> None:
    from idp.admin.account_actions import disable_account
    from idp.extensions import db
    from idp.identity.audit import Actor
    from idp.identity.models import Account

    first, second = flow.tokens(), flow.tokens()
    for tokens in (first, second):
        assert flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])) \
            .status_code == 200  # fmt: skip
    revoked = flow.browser.post(
        "/oauth/revoke", data={"token": first["access_token"]},
        auth=(flow.client.client_id, flow.secret),
    )  # fmt: skip
    assert revoked.status_code == 200
    assert flow.browser.get("/oauth/userinfo", headers=bearer(first["access_token"])) \
        .status_code == 401  # fmt: skip
    assert flow.browser.get("/oauth/userinfo", headers=bearer(second["access_token"])) \
        .status_code == 200  # fmt: skip
    with app.app_context():
        disable_account(db.session.get(Account, user.id), Actor.rule("test"))
    assert flow.browser.get("/oauth/userinfo", headers=bearer(second["access_token"])) \
        .status_code == 401  # fmt: skip


def test_without_versions_the_database_answers(app: Any, flow: CodeFlow, user: Any) -> None:
    """A store that cannot answer (Redis down) means no cache, never a stale answer."""

    class Unavailable:
        def read(self, account_id: str, jti: str) -> None:
            return None

        def bump(self, *args: Any) -> None:
            pass

    from idp.admin.account_actions import disable_account
    from idp.extensions import db
    from idp.identity.audit import Actor
    from idp.identity.models import Account

    tokens = flow.tokens()
    assert flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])) \
        .status_code == 200  # fmt: skip
    app.extensions["idp_cache_versions"] = Unavailable()
    with app.app_context():
        disable_account(db.session.get(Account, user.id), Actor.rule("test"))
    assert flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])) \
        .status_code == 401  # fmt: skip
    assert caching.MAX_AGE <= 60


def test_claims_read_inside_a_changing_transaction_come_from_the_database(
    app: Any, flow: CodeFlow, user: Any
) -> None:
    """A change not yet committed has no version yet: the claims must not come from the cache
    (e.g. the phone binding issues fresh tokens in the transaction that binds the phone)."""
    from idp.extensions import db
    from idp.identity.accounts import set_claim
    from idp.identity.claims import cached_user_claims
    from idp.identity.models import Account

    tokens = flow.tokens(scope="openid profile")
    assert flow.browser.get("/oauth/userinfo", headers=bearer(tokens["access_token"])) \
        .get_json()["name"] == "Alice"  # fmt: skip
    with app.test_request_context("/"):
        set_claim(db.session.get(Account, user.id), "name", "Uncommitted", "user")
        db.session.flush()
        claims = cached_user_claims(user.id, "jti-x", "openid profile")
        assert claims is not None and claims["name"] == "Uncommitted"
        db.session.rollback()


def test_id_tokens_from_a_refresh_follow_a_profile_edit__oidc_core_12_2(
    app: Any, flow: CodeFlow, user: Any
) -> None:
    from idp.extensions import db
    from idp.identity.accounts import set_claim
    from idp.identity.models import Account
    from tests.oidc.helpers import id_token_claims

    tokens = flow.tokens(scope="openid profile offline_access")
    first = flow.refresh(tokens["refresh_token"]).get_json()
    assert id_token_claims(flow.browser, first["id_token"])["name"] == "Alice"
    with app.app_context():
        set_claim(db.session.get(Account, user.id), "name", "Alice Liddell", "user")
        db.session.commit()
    second = flow.refresh(first["refresh_token"]).get_json()
    assert id_token_claims(flow.browser, second["id_token"])["name"] == "Alice Liddell"


def _live_session_id(app: Any, account_id: str) -> str:
    from sqlalchemy import select

    from idp.extensions import db
    from idp.identity.models import LoginSession

    with app.app_context():
        return db.session.scalars(select(LoginSession.id).where(
            LoginSession.account_id == account_id, LoginSession.ended_at.is_(None))).one()


def test_a_signed_in_browsers_authorization_reads_no_session_row_while_nothing_changed(
    app: Any, flow: CodeFlow, user: Any
) -> None:
    from idp.accounts import sessions

    flow.code()  # read: which account's versions to read next time
    flow.code()  # those versions, then the row read again and kept under them
    statements = statements_of(app, flow.code)
    assert [s for s in statements if "FROM login_session" in s] == []
    sid = _live_session_id(app, user.id)
    assert sid not in repr(list(sessions.SESSIONS._entries))  # keyed by its digest only


def test_a_session_ended_elsewhere_signs_nobody_in_on_the_next_request__oidc_core_3_1_2_3(
    app: Any, flow: CodeFlow, user: Any
) -> None:
    """Ended by an admin (another process, as far as this one's cache knows): the next
    authorization request asks for a login, with no stale session served from the cache."""
    from idp.admin.account_actions import end_login_session
    from idp.extensions import db
    from idp.identity.audit import Actor
    from idp.identity.models import Account

    flow.code()
    flow.code()  # served from the cache
    with app.app_context():
        end_login_session(db.session.get(Account, user.id), _live_session_id(app, user.id),
                          Actor.rule("test"))
    response = flow.authorize(prompt="none")
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["error"] == "login_required"


def test_a_disabled_account_signs_nobody_in_on_the_next_request(
    app: Any, flow: CodeFlow, user: Any
) -> None:
    from idp.admin.account_actions import disable_account
    from idp.extensions import db
    from idp.identity.audit import Actor
    from idp.identity.models import Account

    flow.code()
    flow.code()
    with app.app_context():
        disable_account(db.session.get(Account, user.id), Actor.rule("test"))
    response = flow.authorize(prompt="none")
    assert query_of(response.headers["Location"])["error"] == "login_required"


def test_a_code_issued_and_a_refresh_change_no_version(
    app: Any, flow: CodeFlow, user: Any
) -> None:
    """The code's `INSERT` and the rotation's statements (Core statements, on SQLite through
    the ORM session) write no table a cache reads: every process's cached tokens, claims and
    sessions stay valid."""
    tokens = flow.tokens(scope="openid offline_access")
    store = app.extensions["idp_cache_versions"]
    before = store.read(user.id, "")
    flow.code()
    assert store.read(user.id, "") == before
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
    assert store.read(user.id, "") == before


def test_a_commit_that_bumped_versions_is_seen_by_the_rest_of_its_request(
    app: Any, user: Any
) -> None:
    """The request's memo of the versions goes with the bump: a read after this request's own
    commit (a session ended, then read again) compares with the new versions."""
    from idp.caching import versions_for
    from idp.extensions import db
    from idp.identity.accounts import set_claim
    from idp.identity.models import Account

    with app.test_request_context("/"):
        before = versions_for(user.id, "")
        set_claim(db.session.get(Account, user.id), "name", "Alice Liddell", "user")
        db.session.commit()
        after = versions_for(user.id, "")
        assert before is not None and after is not None and after[1] > before[1]
