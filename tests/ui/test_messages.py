"""Errors reach assistive technology (WCAG 3.3.1, 4.1.3): a page error is an alert that describes
the field autofocus lands on; information is a status, not an alert; a field's own error is tied
to it by aria-describedby."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import csrf_token, login


def _tag(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert match, f"no field {name}"
    return match.group(0)


def _message(html: str, text: str) -> str:
    match = re.search(rf'<p class="flash[^"]*"[^>]*>{re.escape(text)}</p>', html)
    assert match, html
    return match.group(0)


def test_a_login_error_is_an_alert_describing_the_focused_field__wcag_3_3_1(
    client: FlaskClient, make_user: Any
) -> None:
    make_user(phone="+8613800138000")
    html = login(client, "+8613800138000", "wrong password").get_data(as_text=True)
    message = _message(html, "The phone/email or password is not right.")
    assert 'role="alert"' in message
    message_id = re.search(r'id="([^"]+)"', message).group(1)  # type: ignore[union-attr]
    field = _tag(html, "identifier")
    assert "autofocus" in field and 'aria-invalid="true"' in field
    assert f'aria-describedby="{message_id}"' in field
    # The message comes before the field in the document, which is where focus lands.
    assert html.index(message) < html.index(field)


def test_without_an_error_no_field_is_marked_invalid(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert "aria-invalid" not in html and "aria-describedby" not in _tag(html, "identifier")


def test_information_is_a_status_not_an_alert__wcag_4_1_3(
    client: FlaskClient, make_user: Any, app: Flask
) -> None:
    make_user(phone="+8613800138000")
    page = client.get("/reset").get_data(as_text=True)
    client.post("/reset", data={"phone": "+8613800138000", "csrf_token": csrf_token(page)})
    code = app.extensions["idp_sms"].last_code("+8613800138000")
    confirm = client.get("/reset/confirm?phone=%2B8613800138000").get_data(as_text=True)
    answer = client.post("/reset/confirm", data={
        "phone": "+8613800138000", "code": code, "password": "a brand new password",
        "csrf_token": csrf_token(confirm),
    })
    done = client.get(answer.headers["Location"]).get_data(as_text=True)
    message = _message(done, "Your password has been changed. Please sign in.")
    assert 'role="status"' in message and 'role="alert"' not in done
    assert "aria-invalid" not in _tag(done, "identifier")


def test_a_field_error_is_tied_to_its_field(client: FlaskClient, make_user: Any) -> None:
    make_user(phone="+8613800138000")
    login(client, "+8613800138000")
    page = client.get("/account").get_data(as_text=True)
    html = client.post("/account", data={
        "name": "Alice", "nickname": "", "picture": "not a url", "csrf_token": csrf_token(page),
    }).get_data(as_text=True)
    field = _tag(html, "picture")
    assert 'aria-invalid="true"' in field and 'aria-describedby="picture-error"' in field
    assert re.search(r'<p class="field-error" id="picture-error">[^<]+</p>', html)
    assert 'aria-invalid' not in _tag(html, "name")
