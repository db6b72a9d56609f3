"""zh-CN and English: a switch (cookie), `ui_locales`, Accept-Language; the shipped catalog."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from idp.config import PROJECT_ROOT

CATALOG = PROJECT_ROOT / "translations" / "zh" / "LC_MESSAGES"


def test_the_switch_sets_the_cookie_and_returns_to_the_page(client: FlaskClient) -> None:
    response = client.get("/locale/zh_CN?next=/login")
    assert response.headers["Location"] == "/login"
    assert "idp_locale=zh_CN" in response.headers["Set-Cookie"]
    html = client.get("/login").get_data(as_text=True)
    assert "登录" in html and 'lang="zh-CN"' in html
    client.get("/locale/en?next=/login")
    assert "Sign in" in client.get("/login").get_data(as_text=True)


def _html_lang(html: str) -> str:
    match = re.search(r"<html\b[^>]*\blang=\"([^\"]+)\"", html)
    assert match, "no lang attribute on <html>"
    return match.group(1)


def _current_language(html: str) -> str:
    """The label the language switch marks as the page's own (aria-current)."""
    match = re.search(r'<nav class="language"[^>]*>.*?aria-current="true">([^<]+)<', html, re.S)
    assert match, "the language switch marks no language as current"
    return match.group(1)


@pytest.mark.parametrize("path", ["/login", "/register", "/reset", "/no-such-page"])
@pytest.mark.parametrize(
    ("locale", "lang", "label"), [("en", "en", "English"), ("zh_CN", "zh-CN", "中文")]
)
def test_html_lang_and_the_current_language__wcag_3_1_1(
    client: FlaskClient, path: str, locale: str, lang: str, label: str
) -> None:
    client.set_cookie("idp_locale", locale)
    html = client.get(path).get_data(as_text=True)
    assert _html_lang(html) == lang
    assert _current_language(html) == label


@pytest.mark.parametrize(("ui_locales", "lang"), [("zh-CN", "zh-CN"), ("en", "en")])
def test_html_lang_follows_ui_locales__oidc_core_3_1_2_1(
    client: FlaskClient, ui_locales: str, lang: str
) -> None:
    assert _html_lang(client.get(f"/login?ui_locales={ui_locales}").get_data(as_text=True)) == lang


def test_the_switch_refuses_unknown_locales_and_foreign_next(client: FlaskClient) -> None:
    assert client.get("/locale/fr").status_code == 404
    assert client.get("/locale/en?next=https://evil.example/").headers["Location"] == "/"


def test_ui_locales_and_accept_language(client: FlaskClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "手机号或邮箱" in page.get_data(as_text=True)
    english = client.get("/login", headers={"Accept-Language": "en-GB,en"})
    assert "Phone or email" in english.get_data(as_text=True)
    # ui_locales wins over Accept-Language (and is remembered: see below).
    assert "登录" in client.get("/login?ui_locales=zh-CN").get_data(as_text=True)


def test_consent_and_account_pages_are_translated(client: FlaskClient, make_user: Any) -> None:
    from tests.conftest import login

    make_user(phone="+8613800138000")
    client.set_cookie("idp_locale", "zh_CN")
    login(client, "+8613800138000")
    html = client.get("/account").get_data(as_text=True)
    assert "你的账号" in html and "登录方式" in html


def test_every_message_is_translated_and_the_mo_file_is_current() -> None:
    with (CATALOG / "messages.po").open("rb") as handle:
        source = read_po(handle)
    with (CATALOG / "messages.mo").open("rb") as handle:
        compiled = read_mo(handle)
    untranslated = [m.id for m in source if m.id and not _translated(m.string)]
    assert untranslated == []
    assert {_key(m.id): _key(m.string) for m in source if m.id} == {
        _key(m.id): _key(m.string) for m in compiled if m.id
    }, "run `make translations` and commit translations/zh/LC_MESSAGES/messages.mo"


def test_every_string_of_the_code_is_in_the_catalog() -> None:
    from babel.messages.extract import extract_from_dir

    with (CATALOG / "messages.po").open("rb") as handle:
        known = {_key(m.id) for m in read_po(handle) if m.id}
    found = set()
    for folder, method in (("idp", "python"), ("templates", "jinja2")):
        pattern = "**.py" if method == "python" else "**.html"
        for _file, _line, message, _comments, _context in extract_from_dir(
            Path(PROJECT_ROOT / folder),
            method_map=[(pattern, method)],
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None,
                      "_l": None},
        ):
            found.add(_key(message))
    assert found - known == set(), "run `make translations` and translate the new strings"


def _translated(string: Any) -> bool:
    return all(string) if isinstance(string, tuple | list) else bool(string)


def _key(message_id: Any) -> Any:
    return tuple(message_id) if isinstance(message_id, tuple | list) else message_id


def test_ui_locales_lasts_through_registration_and_error_pages__oidc_core_3_1_2_1(
    client: FlaskClient,
) -> None:
    client.get("/login?ui_locales=zh-CN&next=/account")
    for path in ("/register", "/reset", "/no-such-page"):
        assert _html_lang(client.get(path).get_data(as_text=True)) == "zh-CN", path
    # The user's own switch wins over what the RP asked for.
    client.get("/locale/en?next=/login")
    assert _html_lang(client.get("/register").get_data(as_text=True)) == "en"


def test_an_unknown_ui_locales_is_not_remembered(client: FlaskClient) -> None:
    client.get("/login?ui_locales=fr")
    assert client.get_cookie("idp_ui_locale") is None
    html = client.get("/register", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert _html_lang(html) == "en"


def test_the_switch_on_a_callback_page_does_not_replay_it(client: FlaskClient) -> None:
    """The WeChat callback's code is spent once used: the switch must not point back at it."""
    html = client.get("/login/wechat/callback?code=spent&state=x").get_data(as_text=True)
    switch = re.search(r'href="(/locale/zh_CN[^"]*)"', html)
    assert switch, html[:2000]
    assert "callback" not in switch.group(1) and "code" not in switch.group(1)
    assert client.get(switch.group(1).replace("&amp;", "&")).headers["Location"] == "/login"


def test_sign_in_methods_on_the_account_page_are_translated(
    client: FlaskClient, make_user: Any
) -> None:
    from tests.conftest import login

    make_user(phone="+8613800138000")
    client.set_cookie("idp_locale", "zh_CN")
    login(client, "+8613800138000")
    html = client.get("/account").get_data(as_text=True)
    methods = re.findall(r"<li><strong>([^<]+)</strong>", html)
    assert sorted(methods) == ["密码", "手机号"], methods


def test_sms_text_is_in_the_language_of_the_page(client: FlaskClient, app: Any) -> None:
    from tests.conftest import csrf_token

    client.set_cookie("idp_locale", "zh_CN")
    page = client.get("/register").get_data(as_text=True)
    client.post("/register", data={"phone": "+8613800138077", "csrf_token": csrf_token(page)})
    (message,) = app.extensions["idp_sms"].outbox
    assert "验证码" in message.text and message.code in message.text


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/no-such-page", "此地址没有页面"),
     ("/oauth/authorize?client_id=nobody&response_type=code", "我们不认识")],
)
def test_error_pages_are_translated(client: FlaskClient, path: str, expected: str) -> None:
    client.set_cookie("idp_locale", "zh_CN")
    html = client.get(path).get_data(as_text=True)
    assert expected in html, html


def test_claim_names_and_proofs_on_the_admin_account_page_are_translated(
    admin: Any, make_user: Any
) -> None:
    from idp.identity.accounts import set_claim

    alice = make_user(phone="+8613800138000")
    set_claim(alice, "nickname", "ali", "user")
    from idp.extensions import db

    db.session.commit()
    admin.browser.set_cookie("idp_locale", "zh_CN")
    html = admin.get(f"/admin/accounts/{alice.id}").get_data(as_text=True)
    assert "<td>昵称</td>" in html
    assert re.search(r'<span class="muted">运维人员</span>', html), html  # verified_by
