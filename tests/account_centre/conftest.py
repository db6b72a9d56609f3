"""Helpers of the account-centre tests: a signed-in browser, and sending a page's form."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import csrf_token, login


def post_form(browser: FlaskClient, page_url: str, action_url: str | None = None,
              **data: Any) -> Any:
    """GET the page for its CSRF token, then POST `data` to `action_url` (default: the page)."""
    page = browser.get(page_url)
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    prefixed = re.search(r'name="[a-z]+-csrf_token"[^>]*value="([^"]+)"', html)
    token = prefixed.group(1) if prefixed else csrf_token(html)
    form = {key: value for key, value in data.items()}
    for key in list(form):
        if key.endswith("csrf_token"):
            form[key] = token
    form.setdefault("csrf_token", token)
    return browser.post(action_url or page_url, data=form)


def start_wechat_bind(browser: FlaskClient, headers: dict[str, str] | None = None) -> Any:
    """Press "Add WeChat": the page (a GET binds nothing), then its form, a POST with the CSRF
    token (ASVS V4.2.2). The answer sends the browser to WeChat."""
    page = browser.get("/account/ways/wechat", headers=headers or {})
    assert page.status_code == 200, page.status_code
    token = csrf_token(page.get_data(as_text=True))
    return browser.post("/account/ways/wechat", headers=headers or {},
                        data={"csrf_token": token})


def sms_code(app: Flask, phone: str) -> str:
    code = app.extensions["idp_sms"].last_code(phone)
    assert code, f"no SMS to {phone}"
    return code


@pytest.fixture
def signed_in(client: FlaskClient, user: Any) -> FlaskClient:
    response = login(client, "+8613800138000")
    assert response.status_code == 302
    return client
