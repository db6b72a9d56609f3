"""Rate limits on every credential check (issue: security hardening)."""

from typing import Any

from tests.conftest import csrf_token, login


def test_password_lockout_after_five_failures_then_reset_unlocks(
    app: Any, client: Any, user: Any
) -> None:
    for _ in range(5):
        assert login(client, "+8613800138000", password="wrong password").status_code == 200
    locked = login(client, "138 0013 8000")  # right password, another spelling: still locked
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    # The unlock path: prove the phone by SMS and choose a new password.
    page = client.get("/reset")
    client.post(
        "/reset",
        data={"phone": "13800138000", "csrf_token": csrf_token(page.get_data(as_text=True))},
    )
    code = app.extensions["idp_sms"].last_code("+8613800138000")
    confirm = client.get("/reset/confirm?phone=%2B8613800138000")
    client.post(
        "/reset/confirm",
        data={
            "phone": "+8613800138000",
            "code": code,
            "password": "a fresh password",
            "csrf_token": csrf_token(confirm.get_data(as_text=True)),
        },
    )
    assert login(client, "+8613800138000", password="a fresh password").status_code == 302


def test_unknown_accounts_lock_out_alike(client: Any) -> None:
    """No enumeration through the lockout either."""
    for _ in range(5):
        login(client, "+8613900000000", password="wrong password")
    assert login(client, "+8613900000000", password="wrong password").status_code == 429


def test_one_address_cannot_spray_many_accounts(client: Any) -> None:
    statuses = [
        login(client, f"+86139000{n:05d}", password="wrong password").status_code for n in range(31)
    ]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429


def test_sms_sends_are_limited_per_phone(app: Any, client: Any) -> None:
    def ask() -> Any:
        page = client.get("/register")
        return client.post(
            "/register",
            data={"phone": "13912345678", "csrf_token": csrf_token(page.get_data(as_text=True))},
        )

    assert ask().status_code == 302
    second = ask()
    assert second.status_code == 429 and "Retry-After" in second.headers
    assert len([m for m in app.extensions["idp_sms"].outbox if m.phone == "+8613912345678"]) == 1


def test_token_endpoint_is_limited_per_client_with_oauth_error(
    client: Any, make_client: Any
) -> None:
    service, secret = make_client(grant_types=["client_credentials"], scope="openid")
    answers = [
        client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(service.client_id, secret),
        )
        for _ in range(6)
    ]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    limited = answers[5]
    assert limited.status_code == 429
    assert limited.get_json()["error"] == "temporarily_unavailable"
    assert "Retry-After" in limited.headers


def test_phone_binding_is_limited_with_oauth_error(client: Any) -> None:
    answers = [client.post("/wechat/phone", json={"code": "x"}) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [401] * 3
    assert answers[3].status_code == 429
    assert answers[3].get_json()["error"] == "temporarily_unavailable"

