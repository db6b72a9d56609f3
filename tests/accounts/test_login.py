"""Password login, the IdP session, registration and reset by SMS code."""

from typing import Any

import pytest

from tests.conftest import PASSWORD, csrf_token, login


@pytest.mark.parametrize(
    "typed", ["+8613800138000", "138 0013 8000", "13800138000", "0086 138-0013-8000"]
)
def test_login_by_phone_in_any_usual_format(client: Any, user: Any, typed: str) -> None:
    response = login(client, typed)
    assert response.status_code == 302
    assert client.get("/account").status_code == 200


def test_login_by_email(client: Any, make_user: Any, app: Any) -> None:
    from idp.extensions import db
    from idp.identity.models import Identity

    make_user(email="Bob@Example.com")
    # Only a verified email signs in; mark it verified as if confirmed.
    for identity in db.session.query(Identity).filter_by(kind="email").all():
        identity.verified = True
    db.session.commit()
    assert login(client, "bob@example.com").status_code == 302


def test_wrong_password_and_unknown_user_answer_alike(client: Any, user: Any) -> None:
    wrong = login(client, "+8613800138000", password="not the password")
    unknown = login(client, "+8613900000000", password="not the password")
    assert wrong.status_code == unknown.status_code == 200
    message = b"The phone/email or password is not right."
    assert message in wrong.data and message in unknown.data


def test_login_requires_csrf(client: Any, user: Any) -> None:
    response = client.post("/login", data={"identifier": "+8613800138000", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/account").status_code == 302


def test_login_issues_a_new_session_cookie(client: Any, user: Any) -> None:
    page = client.get("/login")
    before = client.get_cookie("idp_session")
    login(client, "+8613800138000")
    after = client.get_cookie("idp_session")
    assert before is None or before.value != after.value
    assert after.http_only and after.same_site == "Lax"
    assert page.status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
    ],
)
def test_login_next_never_leaves_the_idp(client: Any, user: Any, target: str) -> None:
    response = login(client, "+8613800138000", next_url=target)
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//")
    assert "evil" not in location


def test_password_hash_is_upgraded_when_parameters_change(app: Any, client: Any, user: Any) -> None:
    from idp.extensions import db
    from idp.identity.models import Identity

    before = db.session.query(Identity).filter_by(kind="password").one().secret_hash
    app.config["IDP_ARGON2_TIME_COST"] = 2
    login(client, "+8613800138000")
    db.session.expire_all()
    after = db.session.query(Identity).filter_by(kind="password").one().secret_hash
    assert before != after and after.startswith("$argon2id$") and "t=2" in after


def test_registration_with_sms_code(app: Any, client: Any) -> None:
    page = client.get("/register")
    response = client.post(
        "/register",
        data={"phone": "139 1234 5678", "csrf_token": csrf_token(page.get_data(as_text=True))},
    )
    assert response.status_code == 302
    code = app.extensions["idp_sms"].last_code("+8613912345678")
    assert code and len(code) == 6
    confirm = client.get(response.headers["Location"])
    done = client.post(
        "/register/confirm",
        data={
            "phone": "+8613912345678",
            "code": code,
            "password": "a new password",
            "accept_terms": "y",
            "csrf_token": csrf_token(confirm.get_data(as_text=True)),
        },
    )
    assert done.status_code == 302
    assert client.get("/account").status_code == 200
    client.post(
        "/logout", data={"csrf_token": csrf_token(client.get("/account").get_data(as_text=True))}
    )
    assert login(client, "13912345678", password="a new password").status_code == 302


def test_registration_of_a_taken_phone_sends_a_code_that_signs_its_owner_in__issue10_20(
    app: Any, client: Any, user: Any
) -> None:
    page = client.get("/register")
    response = client.post(
        "/register",
        data={"phone": "+8613800138000", "csrf_token": csrf_token(page.get_data(as_text=True))},
    )
    assert response.status_code == 302  # same answer as for a free number
    code = app.extensions["idp_sms"].last_code("+8613800138000")
    assert code  # and the owner is not left waiting
    confirm = client.get(response.headers["Location"])
    done = client.post(
        "/register/confirm",
        data={"phone": "+8613800138000", "code": code, "password": "not used at all",
              "accept_terms": "y", "csrf_token": csrf_token(confirm.get_data(as_text=True))},
    )
    assert done.status_code == 302
    account_page = client.get("/account")
    assert account_page.status_code == 200 and b"+8613800138000" in account_page.data
    # The password was not changed by someone who only typed a new one on a register page.
    assert login(app.test_client(), "+8613800138000").status_code == 302


def test_sms_code_dies_after_five_wrong_guesses(app: Any, client: Any) -> None:
    from idp.accounts import sms_codes

    sms_codes.send_code("+8613912345678", "register")
    code = app.extensions["idp_sms"].last_code("+8613912345678")
    for _ in range(5):
        assert not sms_codes.check_code(
            "+8613912345678", "register", "000000" if code != "000000" else "111111"
        )
    assert not sms_codes.check_code("+8613912345678", "register", code)


def test_password_reset_by_sms(app: Any, client: Any, user: Any) -> None:
    page = client.get("/reset")
    response = client.post(
        "/reset",
        data={"phone": "13800138000", "csrf_token": csrf_token(page.get_data(as_text=True))},
    )
    code = app.extensions["idp_sms"].last_code("+8613800138000")
    confirm = client.get(response.headers["Location"])
    done = client.post(
        "/reset/confirm",
        data={
            "phone": "+8613800138000",
            "code": code,
            "password": "brand new secret",
            "csrf_token": csrf_token(confirm.get_data(as_text=True)),
        },
    )
    assert done.status_code == 302
    assert login(client, "+8613800138000").status_code == 200  # old password refused
    assert login(client, "+8613800138000", password="brand new secret").status_code == 302


def test_reset_for_unknown_phone_answers_like_a_known_one(app: Any, client: Any) -> None:
    """Same answer and same work (a code goes out either way, so the provider's latency tells
    nothing); only the holder of the number learns, with the code, that it has no account."""
    page = client.get("/reset")
    response = client.post(
        "/reset",
        data={"phone": "13700000000", "csrf_token": csrf_token(page.get_data(as_text=True))},
    )
    assert response.status_code == 302
    code = app.extensions["idp_sms"].last_code("+8613700000000")
    assert code
    confirm = client.get(response.headers["Location"])
    done = client.post("/reset/confirm", data={
        "phone": "+8613700000000", "code": code, "password": "whatever it is",
        "csrf_token": csrf_token(confirm.get_data(as_text=True)),
    })
    assert done.status_code == 302 and "/login" in done.headers["Location"]
    assert "no account yet" in client.get(done.headers["Location"]).get_data(as_text=True)


def test_account_page_edits_profile_and_lists_login_methods(client: Any, user: Any) -> None:
    login(client, "+8613800138000")
    page = client.get("/account")
    assert b"+8613800138000" in page.data
    client.post(
        "/account",
        data={
            "name": "Alice Liddell",
            "nickname": "al",
            "picture": "",
            "csrf_token": csrf_token(page.get_data(as_text=True)),
        },
    )
    from idp.identity.claims import profile_values

    values = profile_values(user)
    assert values["name"] == ("Alice Liddell", "user")
    assert values["nickname"] == ("al", "user")
