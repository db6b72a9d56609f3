"""The nonce replay check of the authorization endpoint (OIDC Core §3.1.2.1, §15.5.2): made by
the code's own `INSERT` when a code is the answer (no query of its own), before any other
answer otherwise, and a replayed nonce still refused as Authlib refuses it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from tests.conftest import CodeFlow, query_of, statements_of


def _codes() -> int:
    from idp.extensions import db
    from idp.oidc.models import AuthorizationCode

    return int(db.session.scalar(select(func.count()).select_from(AuthorizationCode)) or 0)


def test_the_code_insert_checks_the_nonce__oidc_core_3_1_2_1(app: Any, flow: CodeFlow) -> None:
    """One statement touches the codes: the insert, which carries the nonce check."""
    flow.code()  # signed in, consent given
    statements = statements_of(app, lambda: flow.code(nonce="n-once"))
    on_codes = [s for s in statements if "authorization_code" in s]
    assert len(on_codes) == 1, on_codes
    assert on_codes[0].lstrip().startswith("INSERT") and "authorization_code.nonce =" in on_codes[0]


def test_a_replayed_nonce_is_refused__oidc_core_15_5_2(flow: CodeFlow) -> None:
    flow.code(nonce="n-replayed")
    issued = _codes()
    again = flow.authorize(nonce="n-replayed", state="st-again")
    assert again.status_code == 302
    answer = query_of(again.headers["Location"])
    assert again.headers["Location"].startswith(flow.redirect_uri + "?")
    assert answer["error"] == "invalid_request"
    assert answer["error_description"] == "Replay attack"
    assert answer["state"] == "st-again"
    assert answer["iss"] == "http://127.0.0.1:5000"  # RFC 9207
    assert "code" not in answer
    assert _codes() == issued  # nothing written


def test_a_replayed_nonce_is_refused_before_the_consent_page__oidc_core_15_5_2(
    flow: CodeFlow,
) -> None:
    flow.code(nonce="n-consent")
    again = flow.authorize(consent=None, nonce="n-consent", prompt="consent")
    assert again.status_code == 302, again.get_data(as_text=True)[:300]
    assert query_of(again.headers["Location"])["error_description"] == "Replay attack"


def test_a_replayed_nonce_is_refused_before_the_login_page__oidc_core_15_5_2(
    flow: CodeFlow,
) -> None:
    flow.code(nonce="n-login")
    flow.browser.get("/logout")
    flow.browser.delete_cookie("idp_session")
    again = flow.authorize(consent=None, nonce="n-login")
    assert again.status_code == 302
    assert query_of(again.headers["Location"])["error_description"] == "Replay attack"
    silent = flow.authorize(consent=None, nonce="n-login", prompt="none")  # not login_required
    assert query_of(silent.headers["Location"])["error_description"] == "Replay attack"


def test_a_malformed_request_is_answered_as_such_whatever_its_nonce(flow: CodeFlow) -> None:
    """Validation's earlier steps answer first, as in Authlib's order."""
    flow.code(nonce="n-early")
    again = flow.authorize(nonce="n-early", scope="openid no-such-scope")
    assert query_of(again.headers["Location"])["error"] == "invalid_scope"


def test_a_nonce_is_the_clients_own_and_lives_with_its_code__oidc_core_15_5_2(
    app: Any, flow: CodeFlow, make_client: Any
) -> None:
    from idp.extensions import db
    from idp.models_base import utcnow
    from idp.oidc.models import AuthorizationCode

    flow.code(nonce="n-shared")
    other, secret = make_client(name="Other", redirect_uris=["https://other.example/cb"])
    elsewhere = CodeFlow(flow.browser, other, secret, "https://other.example/cb")
    assert elsewhere.code(nonce="n-shared")  # another client's nonce
    db.session.execute(update(AuthorizationCode).where(AuthorizationCode.nonce == "n-shared")
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert flow.code(nonce="n-shared")  # its code expired: no longer a replay


def test_the_nonce_index_exists(app: Any) -> None:
    from sqlalchemy import inspect

    from idp.extensions import db

    with app.app_context():
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("authorization_code")}
    assert "ix_authorization_code_nonce" in indexes
