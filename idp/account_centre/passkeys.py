"""The passkey pages: adding a passkey or security key (after re-authentication) and using one
at the step after the first factor. The WebAuthn ceremonies themselves are
`idp.second_factor.passkeys`; these views carry each challenge in the session between the
options and the browser's answer, which may be tried once.
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, current_app, jsonify, request, session, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, fresh_auth, me, signed_in
from idp.account_centre.second_factor import complete_second_factor
from idp.account_centre.sign_out_elsewhere import offer_after_enrolment
from idp.accounts.sessions import session_awaiting_second_factor
from idp.accounts.views import safe_next
from idp.extensions import db
from idp.identity.models import Account
from idp.second_factor import factors, passkeys, recovery_codes
from idp.security.throttle import Throttled

REGISTRATION_CHALLENGE = "webauthn_registration_challenge"
AUTHENTICATION_CHALLENGE = "webauthn_authentication_challenge"
MAX_CREDENTIAL_JSON = 16 * 1024


def _credential_json() -> str:
    body = request.get_data(as_text=True)
    if not body or len(body) > MAX_CREDENTIAL_JSON:
        abort(400)
    try:
        parsed = json.loads(body)
    except ValueError:
        abort(400)
    if not isinstance(parsed, dict):
        abort(400)
    return body


def _json_options(options_json: str) -> Any:
    response = current_app.response_class(options_json, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


# --- enrolment -----------------------------------------------------------------------------------


@bp.post("/two-factor/passkey/options")
@signed_in
@fresh_auth(back="account_centre.two_factor")
def passkey_registration_options() -> Any:
    options, challenge = passkeys.registration_options(me(), display_name=_("Your account"))
    session[REGISTRATION_CHALLENGE] = challenge
    return _json_options(options)


@bp.post("/two-factor/passkey")
@signed_in
@fresh_auth(back="account_centre.two_factor")
def passkey_register() -> Any:
    account = me()
    challenge = session.pop(REGISTRATION_CHALLENGE, None)
    if not isinstance(challenge, str):
        return jsonify(error=_("Start again: the request expired.")), 400
    first = not factors.factors_of(account)
    if passkeys.register(account, _credential_json(), challenge, label=_("Passkey")) is None:
        return jsonify(error=_("The passkey could not be added.")), 400
    codes = recovery_codes.new_recovery_codes(account) if first else []
    db.session.commit()
    offer_after_enrolment()
    return jsonify(ok=True, recovery_codes=codes,
                   next=url_for("account_centre.two_factor")), 201


# --- the second step ---------------------------------------------------------------------------


@bp.post("/second-factor/passkey/options")
def second_factor_passkey_options() -> Any:
    row = session_awaiting_second_factor()
    account = db.session.get(Account, row.account_id) if row else None
    if account is None or not passkeys.credentials_of(account):
        abort(404)
    options, challenge = passkeys.authentication_options(account)
    session[AUTHENTICATION_CHALLENGE] = challenge
    return _json_options(options)


@bp.post("/second-factor/passkey")
def second_factor_passkey() -> Any:
    row = session_awaiting_second_factor()
    account = db.session.get(Account, row.account_id) if row else None
    challenge = session.pop(AUTHENTICATION_CHALLENGE, None)
    if row is None or account is None or not isinstance(challenge, str):
        return jsonify(error=_("Start again: the request expired.")), 400
    try:
        factors.attempts_by_account.check(account.id)
    except Throttled:
        return jsonify(error=_("Too many attempts. Please wait a few minutes.")), 429
    amr = passkeys.verify_assertion(account, _credential_json(), challenge)
    if amr is None:
        factors.attempts_by_account.hit(account.id)
        db.session.commit()
        return jsonify(error=_("The passkey did not work. Try again or use another way.")), 400
    complete_second_factor(row, amr)
    target = safe_next(request.args.get("next"))
    return jsonify(ok=True, next=target)
