"""Every account-centre page: English and Chinese, `no-store`, and shown only when signed in."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

PAGES = ["/account/security", "/account/sessions", "/account/apps", "/account/two-factor",
         "/account/password", "/account/phone", "/account/delete", "/account/reauth",
         "/account/two-factor/totp"]
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("path", PAGES)
def test_page_in_english_and_chinese_and_never_cached(app: Flask, signed_in: FlaskClient,
                                                      path: str) -> None:
    english = signed_in.get(path)
    assert english.status_code == 200
    assert english.headers["Cache-Control"] == "no-store"
    heading = re.search(r"<h1>(.*?)</h1>", english.get_data(as_text=True)).group(1)
    assert not CJK.search(heading)
    signed_in.get("/locale/zh_CN")
    chinese = signed_in.get(path).get_data(as_text=True)
    assert 'lang="zh-CN"' in chinese
    assert CJK.search(re.search(r"<h1>(.*?)</h1>", chinese).group(1))


@pytest.mark.parametrize("path", PAGES)
def test_page_needs_a_session(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
