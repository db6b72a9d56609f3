"""Scan-to-sign-in, both sides. Thin: parse, call `scan`, answer.

The browser: `GET /login/scan/code.png` (a fresh ticket and its mini-program code),
`GET /login/scan/status?seen=S` (long-poll; once confirmed, which account), `POST
/login/scan/finish` (the person continues: sign in) or `POST /login/scan/cancel` (end it).
The mini-program (Bearer token of a mini-program client, RFC 6750): `GET /wechat/scan/<ticket>`
(what the confirm page shows) and `POST /wechat/scan/<ticket>` with `{"decision"}` (CONTRACT §8).
"""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import Response, abort, current_app, flash, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from idp.accounts.sessions import start_session
from idp.accounts.views import safe_next
from idp.extensions import csrf, db, limiter
from idp.identity.models import Account
from idp.oidc.models import Client
from idp.oidc.server import require_oauth
from idp.oidc.tokens import AccessToken
from idp.wechat.errors import WeChatError
from idp.wechat.models import WeChatAppKind
from idp.wechat_login import official_account, scan
from idp.wechat_login.blueprint import bp
from idp.wechat_login.errors import NotAMiniProgramClient, oauth_error_for
from idp.wechat_login.requester import describe_browser
from idp.wechat_login.scan_account import confirmed_by
from idp.wechat_login.scan_tickets import TicketStoreUnavailable
from idp.wechat_login.upstream import AppNotConfigured, configured_app
from idp.wechat_login.website_views import _message

DEFAULT_LONG_POLL_SECONDS = 20.0
BUSY_RETRY_AFTER = 2
STORE_RETRY_AFTER = 5
TICKET_MAX_LENGTH = 32
# Per address: a person answers a code or two a minute; a ticket (144 random bits) is not guessed.
CODE_RATE_LIMIT = "30/minute"
ANSWER_RATE_LIMIT = "60/minute"


class FinishForm(FlaskForm):
    """Nothing to fill in: the form exists for its CSRF token."""


class UnknownTicketError(OAuth2Error):
    error = "not_found"
    status_code = 404
    description = "No such ticket, or it has expired."


class TicketAnsweredError(OAuth2Error):
    error = "already_answered"
    status_code = 409
    description = "This sign-in has already been answered."


class WrongMiniProgramError(OAuth2Error):
    error = "unauthorized_client"
    status_code = 403
    description = "This code was made for another mini-program."


@bp.errorhandler(TicketStoreUnavailable)
def _store_unavailable(_error: TicketStoreUnavailable) -> Response:
    """Fail closed while Redis is away: nothing signs in, and every side is told to retry."""
    db.session.rollback()
    body = {"error": "temporarily_unavailable", "error_description": "Try again shortly."}
    return Response(json.dumps(body), status=503, headers={
        "Content-Type": "application/json", "Cache-Control": "no-store",
        "Retry-After": str(STORE_RETRY_AFTER)})


# --- the browser -------------------------------------------------------------------------------


@bp.get("/login/scan/code.png")
@limiter.limit(CODE_RATE_LIMIT)  # each one asks WeChat for an image
def scan_code() -> Any:
    app = scan.scan_app()
    if app is None:
        abort(404)
    ticket = scan.start_ticket(safe_next(request.args.get("next")), app.appid)
    try:
        image = scan.code_image(app, ticket)
    except WeChatError as error:
        mapped = oauth_error_for(error, app.appid)  # logs what an operator must fix
        return Response(status=503 if mapped.status_code >= 500 else 502)
    return Response(image, content_type="image/png", headers={"Cache-Control": "no-store"})


@bp.get("/login/scan/status")
def scan_status() -> Any:
    """Long-poll: answers when the status differs from `seen`, or after a bounded wait."""
    ticket = scan.browser_ticket()
    if ticket is None:
        return _no_store(jsonify(status="unknown"), 404)
    seen = request.args.get("seen", "")[:16]
    seconds = float(current_app.config.get("IDP_WECHAT_SCAN_LONG_POLL_SECONDS")
                    or DEFAULT_LONG_POLL_SECONDS)
    db.session.close()  # no transaction stays open while we wait
    with scan.poll_slot(ticket, seconds) as slot:
        if slot is None:
            return _no_store(jsonify(error="one_poll_at_a_time"), 429,
                             {"Retry-After": str(BUSY_RETRY_AFTER)})
        current = scan.wait_for_change(ticket, seen, seconds if slot else 0.0)
    body: dict[str, Any] = {"status": current.status, "expires_in": scan.seconds_left(current)}
    account = scan.confirming_account(current)
    if account is not None:
        body["account"] = confirmed_by(account)  # shown before the person continues
    if not slot:
        body["retry_after"] = BUSY_RETRY_AFTER
    return _no_store(jsonify(body), 200)


@bp.post("/login/scan/finish")
def scan_finish() -> Any:
    if not FinishForm().validate_on_submit():
        return _message("expired", 400)
    try:
        account, next_url = scan.finish()
    except scan.NotConfirmed:
        return _message("expired", 400)
    start_session(account, amr=[scan.AMR], channel=scan.CHANNEL)
    return redirect(safe_next(next_url))


@bp.post("/login/scan/cancel")
def scan_cancel() -> Any:
    """Not my account (or not now): the ticket ends and nobody signs in."""
    if not FinishForm().validate_on_submit():
        return _message("expired", 400)
    next_url = scan.cancel()
    flash(_("Sign-in cancelled. Nothing was changed."), "info")
    return redirect(url_for("accounts.login", next=safe_next(next_url) if next_url else None))


def scan_code_url(next_url: str | None = None) -> str | None:
    """For the login page: the code's URL, or None when no mini-program is registered, or inside
    WeChat (the Official Account signs in there; nobody scans their own screen)."""
    if official_account.inside_wechat() or scan.scan_app() is None:
        return None
    return url_for("wechat_login.scan_code", next=next_url or None)


# --- the mini-program --------------------------------------------------------------------------


@bp.get("/wechat/scan/<ticket>")
@csrf.exempt
def scan_ticket_info(ticket: str) -> Response:
    """What the confirm page shows: which site, which browser, roughly where."""
    try:
        _account, appid = _mini_program_caller()
        shown = scan.ticket_for_confirm_page(_ticket_id(ticket), appid)
    except MINI_PROGRAM_REFUSALS as refusal:
        return _mini_program_refusal(refusal)
    db.session.commit()
    return _json({
        "status": shown.status,
        "site": shown.site,
        "browser": describe_browser(shown.user_agent),
        "network": shown.network,
        "requested_at": int(shown.created_at),
        "expires_in": scan.seconds_left(shown),
    })


@bp.post("/wechat/scan/<ticket>")
@csrf.exempt
@limiter.limit(ANSWER_RATE_LIMIT)
def scan_ticket_answer(ticket: str) -> Response:
    """CONTRACT §8: 200 {"status"}, 404 unknown or expired, 409 already answered."""
    try:
        account, appid = _mini_program_caller()
        body = request.get_json(silent=True)
        decision = body.get("decision") if isinstance(body, dict) else None
        if not isinstance(decision, str) or decision not in scan.DECISIONS:
            raise InvalidRequestError("Send a JSON object with decision: confirm or refuse.")
        status = scan.answer(_ticket_id(ticket), account, str(decision), appid)
    except MINI_PROGRAM_REFUSALS as refusal:
        return _mini_program_refusal(refusal)
    db.session.commit()
    return _json({"status": status})


# What the mini-program's calls on a ticket may be refused for.
MINI_PROGRAM_REFUSALS = (
    OAuth2Error, scan.UnknownTicket, scan.WrongMiniProgram, scan.TicketAlreadyAnswered,
)


def _mini_program_refusal(refusal: Exception) -> Response:
    """The JSON error answer of a refusal, the ticket's own refusals mapped to their errors."""
    if isinstance(refusal, scan.UnknownTicket):
        return _oauth_error(UnknownTicketError())
    if isinstance(refusal, scan.WrongMiniProgram):
        return _oauth_error(WrongMiniProgramError())
    if isinstance(refusal, scan.TicketAlreadyAnswered):
        return _oauth_error(TicketAnsweredError(), status=refusal.status)
    assert isinstance(refusal, OAuth2Error)
    return _oauth_error(refusal)


def _mini_program_caller() -> tuple[Account, str]:
    """The token's account and its client's mini-program appid."""
    token: AccessToken = require_oauth.acquire_token()
    client: Client | None = token.get_client()
    try:
        app = configured_app(client.wechat_appid if client else None, WeChatAppKind.MINIPROGRAM)
    except AppNotConfigured:
        raise NotAMiniProgramClient("Only a mini-program client can answer a scan.") from None
    account = token.get_user()
    if account is None or not account.is_active:
        raise InvalidTokenError()
    return account, app.appid


def _ticket_id(ticket: str) -> str:
    if len(ticket) > TICKET_MAX_LENGTH:
        raise scan.UnknownTicket()
    return ticket


def _oauth_error(error: OAuth2Error, **extra: Any) -> Response:
    db.session.rollback()
    status, body, headers = error()
    return Response(json.dumps({**dict(body), **extra}), status=status, headers=headers)


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=200,
                    headers={"Content-Type": "application/json", "Cache-Control": "no-store"})


def _no_store(response: Response, status: int, headers: dict[str, str] | None = None) -> Response:
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response
