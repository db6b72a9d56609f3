"""The user's own account page edits every claim whose writers include `user` (issue 16): the
input follows the claim's type, the catalogue checks the value, and what is stored has the
source `user`. Hostile values are a form error (400 with the message by the field), never a 500,
and nothing is written."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from idp.extensions import db
from idp.identity.claims import profile_values
from idp.identity.models import ProfileClaim
from tests.conftest import csrf_token, login

LEVEL = {"name": "shoe_size", "type": "integer", "scope": "member", "writers": ["user"]}
NEWSLETTER = {"name": "newsletter", "type": "boolean", "scope": "member", "writers": ["user"]}
WEDDING = {"name": "wedding_day", "type": "date", "scope": "member", "writers": ["user"]}
HIDDEN = {"name": "member_level", "type": "integer", "scope": "member", "writers": ["admin"]}


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["IDP_CUSTOM_CLAIMS"] = json.dumps([LEVEL, NEWSLETTER, WEDDING, HIDDEN])
    return app_config


@pytest.fixture
def page(client: FlaskClient, user: Any) -> str:
    login(client, "+8613800138000")
    response = client.get("/account")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def form_of(html: str, **changes: str) -> dict[str, str]:
    """What a browser sends: every input and select with its shown value (an unticked box is
    left out), then the person's changes."""
    data: dict[str, str] = {"csrf_token": csrf_token(html)}
    for tag in re.findall(r"<input [^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) == "csrf_token" or 'type="hidden"' in tag:
            continue
        if 'type="checkbox"' in tag and "checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        data[name.group(1)] = value.group(1) if value else ""
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        data[name] = chosen.group(1) if chosen else ""
    for name, body in re.findall(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        data[name] = body
    data.update(changes)
    return data


def tag_of(html: str, name: str) -> str:
    match = re.search(rf'<(input|select|textarea)[^>]* name="{re.escape(name)}"[^>]*>', html)
    assert match, name
    return match.group(0)


def test_inputs_follow_the_claim_types(page: str) -> None:
    assert 'type="date"' in tag_of(page, "birthdate")
    assert 'type="date"' in tag_of(page, "wedding_day")
    assert 'type="number"' in tag_of(page, "shoe_size")
    assert 'type="checkbox"' in tag_of(page, "newsletter")
    assert tag_of(page, "gender").startswith("<select")
    assert 'type="url"' in tag_of(page, "picture")
    for part in ("formatted", "street_address", "locality", "region", "postal_code", "country"):
        tag_of(page, f"address-{part}")
    assert 'name="member_level"' not in page  # only an admin writes it


def test_the_user_edits_gender_birthdate_address_and_custom_claims__oidc_core_5_1(
    client: FlaskClient, user: Any, page: str
) -> None:
    response = client.post("/account", data=form_of(
        page, gender="female", birthdate="1990-05-01", shoe_size="38", newsletter="true",
        wedding_day="2020-10-01", **{"address-locality": "上海", "address-country": "CN",
                                     "address-formatted": "上海市南京路1号"}))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    served = profile_values(user)
    assert served["gender"] == ("female", "user")
    assert served["birthdate"] == ("1990-05-01", "user")
    assert served["shoe_size"] == ("38", "user")
    assert served["newsletter"] == ("true", "user")
    assert json.loads(served["address"][0]) == {
        "formatted": "上海市南京路1号", "locality": "上海", "country": "CN"}
    assert served["name"] == ("Alice", "website")  # an unchanged field is not rewritten

    shown = client.get("/account").get_data(as_text=True)
    assert "checked" in tag_of(shown, "newsletter")
    assert 'value="38"' in tag_of(shown, "shoe_size")
    assert re.search(r'<option value="female" selected', shown)

    cleared = client.post("/account", data={
        k: v for k, v in form_of(shown, shoe_size="", **{"address-locality": "",
                                                        "address-country": "",
                                                        "address-formatted": ""}).items()
        if k != "newsletter"})
    assert cleared.status_code == 302
    served = profile_values(user)
    assert "shoe_size" not in served and "address" not in served
    assert served["newsletter"] == ("false", "user")


def test_a_birthdate_without_the_year_is_kept_and_shown_as_text(
    client: FlaskClient, user: Any, page: str
) -> None:
    from idp.identity.accounts import write_claim
    from idp.identity.audit import Actor

    write_claim(user, "birthdate", "0000-03-14", Actor.user(user.id))
    db.session.commit()
    shown = client.get("/account").get_data(as_text=True)
    assert 'type="text"' in tag_of(shown, "birthdate")
    assert client.post("/account", data=form_of(shown, nickname="al")).status_code == 302
    assert profile_values(user)["birthdate"] == ("0000-03-14", "user")


@pytest.mark.parametrize("field, value, message", [
    ("birthdate", "1990-02-30", "Enter a date as YYYY-MM-DD, 0000-MM-DD"),
    ("birthdate", "yesterday", "Enter a date as YYYY-MM-DD, 0000-MM-DD"),
    ("wedding_day", "2020-13-01", "Enter a date as YYYY-MM-DD."),
    ("gender", "robot", "Choose one of the options."),
    ("gender", "x" * 40, "Choose one of the options."),
    ("shoe_size", "38.5", "Enter a whole number."),
    ("shoe_size", "9" * 30, "Enter a whole number."),
    ("name", "A" * 256, "Use at most 255 characters."),
    ("picture", "javascript:alert(1)", "Enter a web address"),
    ("address-locality", "L" * 300, "Use at most 255 characters in each part"),
])
def test_hostile_values_are_form_errors_by_their_field(
    client: FlaskClient, user: Any, page: str, field: str, value: str, message: str
) -> None:
    before = db.session.query(ProfileClaim).count()
    response = client.post("/account", data=form_of(page, nickname="changed", **{field: value}))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in tag_of(html, field)
    error = re.search(rf'<p class="field-error" id="{re.escape(field)}-error">([^<]+)</p>', html)
    assert error and error.group(1).startswith(message), html[:2000]
    assert db.session.query(ProfileClaim).count() == before  # not even the nickname


def test_errors_are_translated_zh_cn(client: FlaskClient, user: Any, page: str) -> None:
    client.get("/locale/zh_CN")
    html = client.get("/account").get_data(as_text=True)
    assert "出生日期" in html and "性别" in html and "邮政编码" in html
    response = client.post("/account", data=form_of(html, birthdate="1990-02-30"))
    assert "请按 YYYY-MM-DD 输入日期" in response.get_data(as_text=True)


def test_a_field_sent_twice_is_refused(client: FlaskClient, user: Any, page: str) -> None:
    data = MultiDict(form_of(page))
    data.setlist("gender", ["female", "male"])
    response = client.post("/account", data=data)
    assert response.status_code == 400
    assert "gender" not in profile_values(user)


def test_nul_in_a_new_field_is_the_400_page_and_nothing_is_written(
    client: FlaskClient, user: Any, page: str
) -> None:
    before = db.session.query(ProfileClaim).count()
    for field in ("gender", "birthdate", "address-locality", "shoe_size"):
        response = client.post("/account", data=form_of(page, **{field: "1\x00"}))
        assert response.status_code == 400 and response.mimetype == "text/html"
    assert db.session.query(ProfileClaim).count() == before


def test_the_page_is_not_stored_by_caches(client: FlaskClient, page: str) -> None:
    assert "no-store" in client.get("/account").headers["Cache-Control"]
