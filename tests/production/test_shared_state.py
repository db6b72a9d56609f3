"""Caches per process, one truth: a revoked token, a disabled account and a merged-away
account are refused by every `idp serve` process at once, although each process caches token
checks and claims (idp/caching.py). Two real processes (2 workers each) on PostgreSQL + Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.production.conftest import (
    PASSWORD,
    REDIRECT_URI,
    Cluster,
    authorization_code,
    csrf_token,
    redeem,
)

CONNECTIONS = 8  # new connections each: they land on every worker of a process


def sign_in(cluster: Cluster, phone: str, at: int = 0) -> requests.Session:
    base = cluster.urls[at]
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=10)
    answer = browser.post(
        f"{base}/login",
        data={"identifier": phone, "password": PASSWORD, "next": "",
              "csrf_token": csrf_token(page.text)},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert answer.status_code in (302, 303), answer.text[:300]
    return browser


def user_tokens(cluster: Cluster, browser: requests.Session, at: int = 0) -> dict[str, Any]:
    base = cluster.urls[at]
    code, verifier = authorization_code(browser, base, cluster, scope="openid profile phone")
    answer = redeem(base, cluster, code, verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


def userinfo_statuses(base: str, access_token: str) -> list[int]:
    return [
        requests.get(
            f"{base}/oauth/userinfo",
            headers={"Authorization": f"Bearer {access_token}", "Connection": "close"},
            timeout=10,
        ).status_code
        for _ in range(CONNECTIONS)
    ]


def introspected(base: str, cluster: Cluster, access_token: str) -> bool:
    answer = requests.post(
        f"{base}/oauth/introspect", data={"token": access_token},
        auth=(cluster.client_id, cluster.client_secret), timeout=10,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["active"])


def warm(cluster: Cluster, access_token: str) -> None:
    """Every worker of both processes has answered for the token (and cached it)."""
    for base in cluster.urls:
        assert set(userinfo_statuses(base, access_token)) == {200}
        assert introspected(base, cluster, access_token)


def refused_everywhere_within(cluster: Cluster, access_token: str, since: float) -> float:
    for base in cluster.urls:
        assert set(userinfo_statuses(base, access_token)) == {401}, base
        assert not introspected(base, cluster, access_token), base
    return time.monotonic() - since


@pytest.fixture(scope="module")
def admin_app(cluster: Cluster) -> Iterator[Any]:
    """A third process's view of the same IdP: what an admin action or the CLI runs in."""
    from idp import create_app
    from idp.extensions import db

    app = create_app({k: v for k, v in cluster.env.items() if k.startswith("IDP_")})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def create_user(cluster: Cluster, phone: str) -> str:
    created = cluster.cli(
        "users", "create", "--phone", phone, "--name", "Shared", "--password-stdin", "--json",
        stdin=PASSWORD + "\n",
    )
    return str(json.loads(created)["sub"])


def test_a_token_revoked_at_one_process_is_refused_by_the_other_at_once__rfc7009_2(
    cluster: Cluster,
) -> None:
    a, _b = cluster.urls
    phone = "+8613900139101"
    create_user(cluster, phone)
    tokens = user_tokens(cluster, sign_in(cluster, phone))
    warm(cluster, tokens["access_token"])
    revoked = requests.post(
        f"{a}/oauth/revoke", data={"token": tokens["access_token"]},
        auth=(cluster.client_id, cluster.client_secret), timeout=10,
    )  # fmt: skip
    assert revoked.status_code == 200
    assert refused_everywhere_within(cluster, tokens["access_token"], time.monotonic()) < 1.0


def test_a_disabled_account_is_refused_by_every_process_at_once(
    cluster: Cluster, admin_app: Any
) -> None:
    from idp.admin.account_actions import disable_account
    from idp.extensions import db
    from idp.identity.audit import Actor
    from idp.identity.models import Account

    phone = "+8613900139102"
    sub = create_user(cluster, phone)
    tokens = user_tokens(cluster, sign_in(cluster, phone, at=1), at=1)
    warm(cluster, tokens["access_token"])
    disable_account(db.session.get(Account, sub), Actor.rule("test"))
    assert refused_everywhere_within(cluster, tokens["access_token"], time.monotonic()) < 1.0


def test_a_merged_away_account_is_refused_and_the_survivor_claims_follow_at_once(
    cluster: Cluster, admin_app: Any
) -> None:
    from idp.extensions import db
    from idp.identity.audit import Actor
    from idp.identity.merge import merge_accounts
    from idp.identity.models import Account
    from idp.identity.rules import MergeRule, Proof

    survivor_phone, loser_phone = "+8613900139103", "+8613900139104"
    survivor_sub = create_user(cluster, survivor_phone)
    loser_sub = create_user(cluster, loser_phone)
    loser_tokens = user_tokens(cluster, sign_in(cluster, loser_phone))
    survivor_tokens = user_tokens(cluster, sign_in(cluster, survivor_phone, at=1), at=1)
    warm(cluster, loser_tokens["access_token"])
    warm(cluster, survivor_tokens["access_token"])
    merge_accounts(
        db.session.get(Account, survivor_sub), db.session.get(Account, loser_sub),
        rule=MergeRule.ADMIN_DECISION, proof=Proof.admin("same person"),
        actor=Actor.admin(survivor_sub),
    )  # fmt: skip
    assert refused_everywhere_within(cluster, loser_tokens["access_token"], time.monotonic()) < 1
    # The survivor's token is still good; its claims now come from the merged account.
    for base in cluster.urls:
        answer = requests.get(
            f"{base}/oauth/userinfo",
            headers={"Authorization": f"Bearer {survivor_tokens['access_token']}"}, timeout=10,
        )
        if answer.status_code == 200:
            assert answer.json()["sub"] == survivor_sub


def test_a_profile_edit_at_one_process_shows_in_the_other_claims_at_once(
    cluster: Cluster, admin_app: Any
) -> None:
    from idp.extensions import db
    from idp.identity.accounts import set_claim
    from idp.identity.models import Account

    phone = "+8613900139105"
    sub = create_user(cluster, phone)
    tokens = user_tokens(cluster, sign_in(cluster, phone))
    warm(cluster, tokens["access_token"])
    set_claim(db.session.get(Account, sub), "name", "Renamed", "user")
    db.session.commit()
    for base in cluster.urls:
        for _ in range(CONNECTIONS):
            answer = requests.get(
                f"{base}/oauth/userinfo",
                headers={"Authorization": f"Bearer {tokens['access_token']}",
                         "Connection": "close"}, timeout=10,
            )  # fmt: skip
            assert answer.json()["name"] == "Renamed"


def authorization_answers(cluster: Cluster, browser: requests.Session) -> list[dict[str, str]]:
    """`prompt=none` authorization requests on new connections (every worker of both
    processes): each redirect's parameters."""
    from tests.conftest import pkce_pair, query_of

    _verifier, challenge = pkce_pair()
    found = []
    for base in cluster.urls:
        for _ in range(CONNECTIONS):
            answer = browser.get(f"{base}/oauth/authorize", params={
                "response_type": "code", "client_id": cluster.client_id,
                "redirect_uri": REDIRECT_URI, "scope": "openid", "prompt": "none",
                "code_challenge": challenge, "code_challenge_method": "S256",
            }, headers={"Connection": "close"}, allow_redirects=False, timeout=10)
            assert answer.status_code == 302, answer.text[:300]
            found.append(query_of(answer.headers["Location"]))
    return found


def test_a_session_ended_elsewhere_signs_nobody_in_at_any_process_at_once__oidc_core_3_1_2_3(
    cluster: Cluster, admin_app: Any
) -> None:
    """Every process keeps the signed-in browser's session for its authorization requests
    (`idp.accounts.sessions.SESSIONS`); ended by an admin in a third process, it signs nobody
    in at the next request anywhere (`login_required`)."""
    from sqlalchemy import select

    from idp.admin.account_actions import end_login_session
    from idp.extensions import db
    from idp.identity.audit import Actor
    from idp.identity.models import Account, LoginSession

    phone = "+8613900139106"
    sub = create_user(cluster, phone)
    browser = sign_in(cluster, phone)
    user_tokens(cluster, browser)  # consent given
    for _ in range(2):  # learnt, then kept, by every worker
        assert all("code" in found for found in authorization_answers(cluster, browser))
    sid = db.session.scalars(select(LoginSession.id).where(
        LoginSession.account_id == sub, LoginSession.ended_at.is_(None))).one()
    end_login_session(db.session.get(Account, sub), sid, Actor.rule("test"))
    db.session.remove()
    answers = authorization_answers(cluster, browser)
    assert {found.get("error") for found in answers} == {"login_required"}
