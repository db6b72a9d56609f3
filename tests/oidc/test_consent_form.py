"""The consent form reposts the RP's request with the user's answer: only the protocol's own
parameters ride along, and the answer is exactly one `decision` (issue 10, item 1)."""

from typing import Any

from sqlalchemy import func, select

from tests.conftest import CodeFlow, csrf_token, query_of
from tests.oidc.forms import click, hidden_fields


def consents_stored() -> int:
    from idp.extensions import db
    from idp.oidc.models import Consent

    return db.session.scalar(select(func.count()).select_from(Consent)) or 0


def test_decision_in_the_authorization_url_cannot_answer_for_the_user__rfc6749_10_12(
    flow: CodeFlow,
) -> None:
    params = flow.authorize_params(decision="allow")
    page = flow.browser.get("/oauth/authorize", query_string=params)
    assert page.status_code == 200 and b'name="decision"' in page.data

    denied = click(flow.browser, page, "deny")

    assert denied.status_code == 302
    answer = query_of(denied.headers["Location"])
    assert answer["error"] == "access_denied" and "code" not in answer
    assert consents_stored() == 0


def test_consent_form_carries_only_authorization_parameters__oidc_core_3_1_2_1(
    flow: CodeFlow,
) -> None:
    params = flow.authorize_params(decision="allow", login_hint="+8613800138000", evil="x")
    page = flow.browser.get("/oauth/authorize", query_string=params)
    carried = dict(hidden_fields(page.get_data(as_text=True)))

    assert "decision" not in carried and "evil" not in carried
    for name in ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                 "code_challenge", "code_challenge_method", "login_hint"):
        assert carried[name] == params[name]

    allowed = click(flow.browser, page, "allow")
    assert "code" in query_of(allowed.headers["Location"])
    assert consents_stored() == 1


def test_consent_post_with_two_decisions_is_refused__rfc6749_3_1(flow: CodeFlow) -> None:
    params = flow.authorize_params()
    page = flow.browser.get("/oauth/authorize", query_string=params)
    form: list[tuple[str, Any]] = [
        *params.items(),
        ("csrf_token", csrf_token(page.get_data(as_text=True))),
        ("decision", "allow"),
        ("decision", "deny"),
    ]
    from werkzeug.datastructures import MultiDict

    response = flow.browser.post("/oauth/authorize", data=MultiDict(form))

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert consents_stored() == 0


def test_consent_post_without_a_known_decision_is_refused(flow: CodeFlow) -> None:
    params = flow.authorize_params()
    page = flow.browser.get("/oauth/authorize", query_string=params)
    token = csrf_token(page.get_data(as_text=True))
    for decision in (None, "maybe"):
        form = {**params, "csrf_token": token}
        if decision:
            form["decision"] = decision
        response = flow.browser.post("/oauth/authorize", data=form)
        assert response.status_code == 400 and "Location" not in response.headers
    assert consents_stored() == 0


def test_repeated_authorization_parameter_is_refused__rfc6749_3_1(flow: CodeFlow) -> None:
    from werkzeug.datastructures import MultiDict

    params = MultiDict(flow.authorize_params())
    params.add("nonce", "second")
    response = flow.browser.get("/oauth/authorize", query_string=params)

    assert response.status_code == 400
    assert "Location" not in response.headers
