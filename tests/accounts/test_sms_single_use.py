"""An SMS code is used once, also when several requests present it at the same instant (issue 23
item 6): on SQLite four concurrent `/register/confirm` with one code all succeeded, making one
account and four sessions. Real threads, each its own request and database session."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from idp.extensions import db
from idp.identity.models import Account, LoginSession
from tests.conftest import csrf_token

PHONE = "+8613912345678"
RACERS = 4


def _racing_posts(app: Flask, cookie: str, path: str, form: dict[str, str]) -> list[Any]:
    """`RACERS` browsers holding the same session cookie POST `form` at once."""
    db.session.commit()  # the test's own session holds no transaction while they race
    barrier = threading.Barrier(RACERS)
    answers: list[Any] = [None] * RACERS

    def post(index: int) -> None:
        browser = FlaskClient(app, app.response_class, use_cookies=True)
        browser.set_cookie("idp_session", cookie)
        with app.app_context():
            barrier.wait(timeout=10)
            try:
                answers[index] = browser.post(path, data=form)
            except Exception as error:  # noqa: BLE001 - reported below
                answers[index] = error

    threads = [threading.Thread(target=post, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    db.session.expire_all()
    return answers


def test_one_register_code_raced_four_times_signs_in_once(
    app: Flask, client: FlaskClient
) -> None:
    page = client.get("/register")
    client.post("/register", data={"phone": "139 1234 5678",
                                   "csrf_token": csrf_token(page.get_data(as_text=True))})
    code = app.extensions["idp_sms"].last_code(PHONE)
    assert code
    confirm = client.get("/register/confirm", query_string={"phone": PHONE})
    cookie = client.get_cookie("idp_session")
    assert cookie is not None
    form = {"phone": PHONE, "code": code, "password": "a long enough password",
            "accept_terms": "y", "csrf_token": csrf_token(confirm.get_data(as_text=True))}

    answers = _racing_posts(app, cookie.value, "/register/confirm", form)

    errors = [answer for answer in answers if isinstance(answer, Exception)]
    assert not errors, errors
    assert all(answer.status_code in (200, 302) for answer in answers), answers
    signed_in = [answer for answer in answers if answer.status_code == 302]
    assert len(signed_in) == 1, [answer.status_code for answer in answers]
    assert db.session.scalar(select(func.count()).select_from(Account)) == 1
    assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 1
