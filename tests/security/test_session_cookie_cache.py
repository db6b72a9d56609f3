"""A session cookie verified once per process (`idp.security.session_cookie`) is still refused
exactly when Flask's own verification refuses it: altered, signed with another key, or older
than the session's lifetime — whether or not this process has seen it before."""

from __future__ import annotations

from typing import Any
from unittest import mock

from tests.conftest import login


def _signed_in(client: Any) -> str:
    login(client, "+8613800138000")
    assert client.get("/account").status_code == 200  # verified, and now kept
    return str(client.get_cookie("idp_session").value)


def test_an_altered_cookie_is_refused(client: Any, user: Any) -> None:
    cookie = _signed_in(client)
    payload, stamp, signature = cookie.rsplit(".", 2)
    forged = f"{payload}.{stamp}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    client.set_cookie("idp_session", forged)
    assert client.get("/account").status_code == 302  # to the login page


def test_a_cookie_older_than_the_session_lifetime_is_refused(
    app: Any, client: Any, user: Any
) -> None:
    cookie = _signed_in(client)
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    later = __import__("time").time() + lifetime + 5
    with mock.patch("idp.security.session_cookie.time.time", return_value=later):
        assert client.get("/account").status_code == 302
    client.set_cookie("idp_session", cookie)
    assert client.get("/account").status_code == 200  # still young now


def test_a_new_key_refuses_the_cookies_of_the_old(app: Any, client: Any, user: Any) -> None:
    _signed_in(client)
    app.secret_key = "another-secret-key"
    assert client.get("/account").status_code == 302


def test_a_cookie_is_verified_once(app: Any, client: Any, user: Any) -> None:
    _signed_in(client)
    assert client.get("/account").status_code == 200  # a page may add to the session once
    cookie = client.get_cookie("idp_session").value
    serializer = app.session_interface.get_signing_serializer(app)
    with mock.patch.object(serializer, "loads", wraps=serializer.loads) as loads:
        assert client.get("/account").status_code == 200
    assert client.get_cookie("idp_session").value == cookie
    assert loads.call_count == 0
