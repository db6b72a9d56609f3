"""HTTP endpoints of the protocol. Thin: parse, hand to Authlib, render.

JWKS, discovery, userinfo, introspection and the token endpoint are not here: they are served
in front of Flask (`idp/oidc/hot_paths`)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import (
    Blueprint,
    Response,
    redirect,
    render_template,
    request,
    url_for,
)

from idp.accounts.sessions import auth_time, current_account, current_session, signed_in
from idp.extensions import csrf, db
from idp.identity.catalogue import catalogue
from idp.oidc import consent as consents
from idp.oidc import gateway, nonces
from idp.oidc.context import issuer
from idp.oidc.interaction import (
    AUTHORIZATION_PARAMETERS,
    CONSENT_DECISIONS,
    LOGOUT_DECISIONS,
    LOGOUT_PARAMETERS,
    carried_parameters,
    decision_of,
    repeated_parameter,
)
from idp.oidc.server import authorization_server
from idp.oidc.step_up import UnmetAuthenticationRequirements, mfa_required, session_has_mfa
from idp.scopes import scope_set
from idp.second_factor.factors import has_second_factor

bp = Blueprint("oidc", __name__)


@bp.route("/oauth/revoke", methods=["POST"])
@csrf.exempt
def revoke() -> Response:
    return authorization_server.create_endpoint_response("revocation")


@bp.route("/oauth/introspect/bearer", methods=["GET"])
@csrf.exempt
def introspect_bearer() -> Response:
    """The status-code form of introspection for nginx `auth_request` (`gateway.py`)."""
    return gateway.check_bearer()


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    """OIDC Core §3.1.2: validate, authenticate, ask consent, answer with a code. A POST is the
    consent form's answer: exactly one `decision`, and no parameter twice (RFC 6749 §3.1)."""
    refusal = _malformed_interaction(AUTHORIZATION_PARAMETERS, CONSENT_DECISIONS)
    if refusal is not None:
        return refusal
    decision = decision_of(request.form, CONSENT_DECISIONS) if request.method == "POST" else None
    login = signed_in()
    fresh_login_needed = login is not None and _needs_fresh_login(login)
    end_user = None if fresh_login_needed or login is None else login.account
    nonces.defer()  # checked by the code's insert, or before any other answer
    try:
        grant = authorization_server.get_consent_grant(end_user=end_user)
    except OAuth2Error as error:
        return _authorization_error(error)
    except ValueError:
        # Authlib refuses to build an error whose description would echo non-ASCII input
        # (e.g. a response_type of "ü"): the request is malformed, and shown as such.
        return _authorization_error(InvalidRequestError("Malformed authorization request."))

    prompts = set((request.values.get("prompt") or "").split())
    client = grant.client
    step_up = end_user is not None and login is not None and mfa_required(
        bool(getattr(client, "require_mfa", False)), request.values.get("acr_values")
    ) and not session_has_mfa(login.amr)
    scopes = scope_set(grant.request.scope)
    needs_consent = end_user is not None and not step_up and (
        "consent" in prompts or not consents.covers(end_user.id, client, scopes))
    if end_user is None or step_up or needs_consent or decision == "deny":
        replayed = nonces.replay_error()  # no code follows: the deferred check runs now
        if replayed is not None:
            return _authorization_error(replayed)
    if end_user is None:
        if "none" in prompts:
            return _authorization_error(_bound(LoginRequiredError(), grant))
        return redirect(url_for("accounts.login", next=_continue_url(), **_login_hints()))

    if step_up:
        account, row = current_account(), current_session()
        if "none" in prompts or account is None or row is None or not has_second_factor(account):
            return _authorization_error(_bound(UnmetAuthenticationRequirements(), grant))
        row.second_factor_pending = True  # step-up: this session waits for the factor
        db.session.commit()
        return redirect(url_for("account_centre.second_factor", next=_continue_url()))
    if needs_consent and "none" in prompts:
        return _authorization_error(_bound(ConsentRequiredError(), grant))
    if needs_consent and request.method == "GET":
        return render_template(
            "oidc/consent.html",
            client=client,
            scopes=sorted(scopes),
            declared_scopes=_declared_scopes(scopes),
            params=carried_parameters(request.args, AUTHORIZATION_PARAMETERS),
        )
    if decision == "deny" or (needs_consent and decision != "allow"):
        return authorization_server.create_authorization_response(grant=grant, grant_user=None)
    if needs_consent:
        consents.remember(end_user.id, client, scopes)
    return authorization_server.create_authorization_response(grant=grant, grant_user=end_user)


def _declared_scopes(scopes: set[str]) -> dict[str, tuple[str, list[str]]]:
    """The operator's own scopes among those asked: {scope: (declared description, the names
    of the claims it releases)}, for the consent page."""
    known = catalogue()
    return {
        scope: (known.scope_description(scope), [claim.name for claim in claims])
        for scope, claims in known.declared_scopes().items() if scope in scopes
    }


def _malformed_interaction(parameters: tuple[str, ...], decisions: frozenset[str]) -> Any:
    """A 400 page for a repeated protocol parameter, or for a POST without exactly one known
    `decision`; None when the request is well formed."""
    repeated = repeated_parameter(request.values, parameters)
    if repeated is not None:
        error = InvalidRequestError(f"Parameter '{repeated}' appears more than once.")
    elif request.method == "POST" and decision_of(request.form, decisions) is None:
        error = InvalidRequestError("Exactly one decision is expected.")
    else:
        return None
    return render_template(
        "oidc/error.html", error=error.error, description=error.get_error_description()
    ), 400


def _needs_fresh_login(login: Any) -> bool:
    """`prompt=login`, or `max_age` exceeded (OIDC Core §3.1.2.1)."""
    prompts = (request.values.get("prompt") or "").split()
    if "login" in prompts:
        return True
    max_age = request.values.get("max_age")
    if max_age is not None:
        try:
            return time.time() - auth_time(login) > max(0, int(max_age))
        except ValueError:
            return False  # Authlib reports the malformed value
    return False


def _continue_url() -> str:
    """Where the login page sends the browser back: this request, minus `prompt=login`
    (so the fresh login is not demanded again)."""
    items = cast(Iterable[tuple[str, str]], request.values.items(multi=True))
    params = [(k, v) for k, v in items if k != "csrf_token"]
    cleaned: list[tuple[str, str]] = []
    for key, value in params:
        if key == "prompt":
            value = " ".join(p for p in value.split() if p != "login")
            if not value:
                continue
        cleaned.append((key, value))
    return url_for("oidc.authorize") + "?" + urlencode(cleaned)


def _login_hints() -> dict[str, Any]:
    hints = {}
    for name in ("login_hint", "ui_locales"):
        if request.values.get(name):
            hints[name] = request.values[name][:200]
    return hints


def _bound(error: OAuth2Error, grant: Any) -> OAuth2Error:
    error.redirect_uri = grant.redirect_uri
    error.state = grant.request.payload.state
    return error


def _authorization_error(error: OAuth2Error) -> Any:
    """Redirect to a verified redirect URI with the error and `iss` (RFC 9207); otherwise show the
    user an error page and never redirect (RFC 6749 §4.1.2.1). A replayed nonce, when its
    check was deferred past this error's step (`idp.oidc.nonces`), is answered instead, as
    Authlib's validation would have answered it first."""
    error = nonces.replay_error() or error
    db.session.rollback()
    if error.redirect_uri:
        status, _body, headers = error()
        location = dict(headers)["Location"]
        return redirect(add_params_to_uri(location, {"iss": issuer()}), code=status)
    return (
        render_template(
            "oidc/error.html", error=error.error, description=error.get_error_description()
        ),
        400,
    )


@bp.route("/oauth/logout", methods=["GET", "POST"])
def logout() -> Any:
    """RP-Initiated Logout 1.0: the session ends at once only when `id_token_hint` is an ID token
    of this very session (§2: same `sub` and `sid`); otherwise the user confirms (a POST with a
    CSRF token and one `decision`), so no third party can log them out."""
    refusal = _malformed_interaction(LOGOUT_PARAMETERS, LOGOUT_DECISIONS)
    if refusal is not None:
        return refusal
    try:
        end_request = authorization_server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return render_template(
            "oidc/error.html", error=error.error, description=error.get_error_description()
        ), 400
    decision = decision_of(request.form, LOGOUT_DECISIONS) if request.method == "POST" else None
    if decision == "stay":
        return render_template("oidc/logged_out.html", stayed=True)
    if decision is None and _logout_needs_confirmation(end_request.id_token_claims):
        return render_template(
            "oidc/logout.html", params=carried_parameters(request.args, LOGOUT_PARAMETERS)
        )
    response = authorization_server.create_endpoint_response("end_session", end_request)
    return response or render_template("oidc/logged_out.html", stayed=False)


def _logout_needs_confirmation(hint_claims: dict[str, Any] | None) -> bool:
    """§2: the hint names this browser's session only when both its `sub` and `sid` do. With no
    session there is nothing to end, and nothing to ask."""
    login = signed_in()
    if login is None:
        return False
    if hint_claims is None:
        return True
    return hint_claims.get("sub") != login.account_id or hint_claims.get("sid") != login.id
