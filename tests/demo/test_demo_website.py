"""The demo website logs in through the IdP over real HTTP: code flow with PKCE and a nonce,
ID token validated by Authlib's client, userinfo, refresh, RP-initiated logout."""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from sqlalchemy import func, select

from idp.demo.run import print_banner
from idp.demo.seed import ADMIN_NAME, ADMIN_PHONE
from idp.extensions import db
from idp.identity.accounts import find_identity
from idp.identity.models import IdentityKind, LoginSession
from tests.demo.conftest import Browser, DemoStack


def admin_sub(stack: DemoStack) -> str:
    with stack.idp.app_context():
        identity = find_identity(IdentityKind.PHONE, ADMIN_PHONE)
        assert identity is not None
        return identity.account_id


def log_in(browser: Browser, stack: DemoStack) -> Any:
    login_page = browser.get(f"{stack.rp_url}/login")
    assert login_page.url.startswith(f"{stack.idp_url}/login"), browser.hops
    password = stack.prepared.seed.admin_password
    assert password
    return browser.submit(login_page, "/login", identifier=ADMIN_PHONE, password=password)


def shown_sub(html: str) -> str:
    match = re.search(r'id="sub">([^<]+)<', html)
    assert match, html[:2000]
    return match.group(1)


def active_sessions(stack: DemoStack) -> int:
    query = select(func.count()).select_from(LoginSession).where(LoginSession.ended_at.is_(None))
    with stack.idp.app_context():
        return db.session.scalar(query) or 0


def test_demo_website_logs_in_with_code_pkce_and_nonce__oidc_core_3_1(
    demo_stack: DemoStack, browser: Browser
) -> None:
    home = log_in(browser, demo_stack)

    assert home.status_code == 200
    assert home.url == f"{demo_stack.rp_url}/"
    assert shown_sub(home.text) == admin_sub(demo_stack)
    assert ADMIN_NAME in home.text
    assert "+8613900000000" in home.text  # phone scope, in the claims and userinfo
    authorize = next(hop for hop in browser.hops if "/oauth/authorize" in hop)
    params = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert params["code_challenge_method"] == "S256"
    assert params["nonce"]
    callback = next(hop for hop in browser.hops if "/callback" in hop)
    assert parse_qs(urlsplit(callback).query)["iss"] == [demo_stack.idp_url]  # RFC 9207


def test_second_login_is_single_sign_on(demo_stack: DemoStack, browser: Browser) -> None:
    log_in(browser, demo_stack)
    browser.forget_cookie("demo_rp_session")  # a new visitor of the website, same IdP session

    home = browser.get(f"{demo_stack.rp_url}/login")

    assert home.url == f"{demo_stack.rp_url}/"
    assert not any(hop.startswith(f"{demo_stack.idp_url}/login") for hop in browser.hops)
    assert shown_sub(home.text) == admin_sub(demo_stack)


def test_refresh_keeps_the_subject__oidc_core_12(demo_stack: DemoStack, browser: Browser) -> None:
    home = log_in(browser, demo_stack)

    refreshed = browser.submit(home, "/refresh")

    assert refreshed.status_code == 200
    assert "refreshed 1×" in refreshed.text
    assert 'class="flash error"' not in refreshed.text
    assert shown_sub(refreshed.text) == admin_sub(demo_stack)


def test_logout_ends_the_idp_session__rp_initiated_logout_2(
    demo_stack: DemoStack, browser: Browser
) -> None:
    home = log_in(browser, demo_stack)
    assert active_sessions(demo_stack) == 1

    after = browser.submit(home, "/logout")

    end_session = next(hop for hop in browser.hops if "/oauth/logout" in hop)
    params = parse_qs(urlsplit(end_session).query)
    assert {"id_token_hint", "post_logout_redirect_uri", "state"} <= set(params)
    assert after.url.startswith(f"{demo_stack.rp_url}/?state=")
    assert "You are logged out" in after.text
    assert active_sessions(demo_stack) == 0
    # The IdP asks for the password again: its session is gone, not just the website's.
    again = browser.get(f"{demo_stack.rp_url}/login")
    assert again.url.startswith(f"{demo_stack.idp_url}/login")


def test_callback_error_is_shown_not_raised(demo_stack: DemoStack, browser: Browser) -> None:
    page = browser.get(f"{demo_stack.rp_url}/callback?error=access_denied&state=unknown")

    assert page.status_code == 200
    assert 'class="flash error"' in page.text


def test_every_link_of_the_banner_opens__readme(demo_stack: Any) -> None:
    """Issue 10 item 21: the banner's fake-WeChat links were 404s."""
    shown = io.StringIO()
    print_banner(demo_stack.idp_url, demo_stack.fake.base_url, demo_stack.prepared.seed,
                 out=shown)
    links = re.findall(r"(https?://[^\s)]+)", shown.getvalue())
    assert any("__fake__" in link for link in links)
    for link in links:
        if link.rstrip("/") == demo_stack.fake.base_url:
            continue  # shown as the API's base ("API at …"), not as a page
        response = requests.get(link, timeout=10)
        assert response.status_code == 200, (link, response.status_code)
