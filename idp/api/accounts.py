"""Accounts through the management API: search, read, create, update claims (with If-Match),
disable/enable, link/unlink, sessions and refresh-token families. Views parse, call the identity
engine, and render; the engine's refusals become problem documents.

Claims: every claim of the data dictionary (`identity/catalogue.py`) whose writers include `api`,
checked by the catalogue's validators and stored with the source `api`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request, url_for
from sqlalchemy import select

from idp.api.blueprint import api_actor, bp, requires
from idp.api.problems import ApiProblem
from idp.api.representations import (
    account_view,
    etag_of,
    iso,
    merge_view,
    merges_of,
    session_handle,
)
from idp.extensions import db
from idp.identity import audit, status
from idp.identity.accounts import (
    IdentityError,
    IdentityTaken,
    create_account,
    find_identity,
    link_identity,
    resolve_account,
    write_claim,
)
from idp.identity.catalogue import ClaimRefused, catalogue, check_write
from idp.identity.links import AccountUnavailable, link_to_active_account, unlink_identity
from idp.identity.lookup import matching_account_ids
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind
from idp.identity.phones import InvalidPhoneNumber, normalize_phone
from idp.identity.rules import ProofMethod, UnlinkRefused
from idp.identity.sign_out import live_sessions, sign_out_session
from idp.identity.transactions import lock_accounts, run_in_transaction
from idp.models_base import utcnow
from idp.oidc.grants import revoke_family
from idp.oidc.models import RefreshToken

CLAIM_WRITER = "api"  # the writer and the source of what the company's services say
MAX_PAGE = 100
LINKABLE_KINDS = (IdentityKind.EMAIL, IdentityKind.PHONE)


# --- reading -------------------------------------------------------------------------------------


@bp.get("/accounts")
@requires("idp:accounts.read")
def search() -> Any:
    """Any identifier (phone in any spelling, email, openid, unionid, sub, alias, part of a
    name); pages follow `next_cursor` (the last `sub` seen, opaque)."""
    text = _text_arg("q", required=False)
    limit = _int_arg("limit", 20, 1, MAX_PAGE)
    after = _decode_cursor(request.args.get("cursor"))
    query = select(Account).order_by(Account.id).limit(limit + 1)
    if text:
        query = query.where(Account.id.in_(matching_account_ids(text)))
    if after:
        query = query.where(Account.id > after)
    rows = list(db.session.scalars(query))
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1].id) if len(rows) > limit else None
    return jsonify({"accounts": [account_view(a) for a in page], "next_cursor": next_cursor})


@bp.get("/accounts/<sub>")
@requires("idp:accounts.read")
def read(sub: str) -> Any:
    return _account_response(account_or_404(sub))


# --- creating and changing -----------------------------------------------------------------------


@bp.post("/accounts")
@requires("idp:accounts.write")
def create() -> Any:
    """A new account with a phone the calling service vouches for (verified) and claims."""
    body = json_object()
    phone = _phone(body.get("phone"))
    claims = _claims(body.get("claims", {}))
    actor = api_actor()

    def work() -> Account:
        if find_identity(IdentityKind.PHONE, phone) is not None:
            raise ApiProblem(409, "phone_taken", "another account holds this phone")
        account = create_account(actor, "api")
        link_identity(account, IdentityKind.PHONE, phone, actor, verified=True,
                      proof=ProofMethod.OPERATOR)
        for name, value in claims.items():
            write_claim(account, name, value, actor, writer=CLAIM_WRITER)
        return account

    try:
        account = run_in_transaction(work, attempts=3)
    except IdentityTaken as taken:
        raise ApiProblem(409, "phone_taken", "another account holds this phone") from taken
    response = _account_response(account)
    response.status_code = 201
    response.headers["Location"] = url_for("api.read", sub=account.id)
    return response


@bp.patch("/accounts/<sub>/claims")
@requires("idp:accounts.write")
def update_claims(sub: str) -> Any:
    """Sets (or, with null, removes) what the company says of profile claims. `If-Match` with
    the account's ETag is required: a change made meanwhile is not overwritten (412)."""
    account = account_or_404(sub)
    wanted = request.headers.get("If-Match")
    if not wanted:
        raise ApiProblem(428, "if_match_required", "send If-Match with the account's ETag")
    claims = _claims(json_object(), allow_null=True)
    actor = api_actor()
    account_id = account.id

    def work() -> Account:
        locked = lock_accounts(account_id).get(account_id)
        if locked is None:
            raise ApiProblem(404, "no_such_account", "no such account")
        if wanted.strip() != "*" and etag_of(account_view(locked)) not in _etags(wanted):
            raise ApiProblem(412, "etag_mismatch", "the account changed since it was read")
        if locked.status != AccountStatus.ACTIVE:
            raise ApiProblem(409, "account_not_active", "the account is not active")
        for name, value in claims.items():
            write_claim(locked, name, value, actor, writer=CLAIM_WRITER)
        return locked

    return _account_response(run_in_transaction(work))


@bp.post("/accounts/<sub>/disable")
@requires("idp:accounts.write")
def disable(sub: str) -> Any:
    return _change_status(sub, status.disable_account, "disabled through the API")


@bp.post("/accounts/<sub>/enable")
@requires("idp:accounts.write")
def enable(sub: str) -> Any:
    return _change_status(sub, status.enable_account, "enabled through the API")


def _change_status(sub: str, change: Callable[..., Any], reason: str) -> Response:
    """Disable or enable through the engine; its refusal is a 409 problem."""
    try:
        change(account_or_404(sub), api_actor(), reason=reason)
    except status.StatusRefused as refusal:
        raise ApiProblem(409, refusal.code, str(refusal)) from refusal
    return _account_response(account_or_404(sub))


@bp.post("/accounts/<sub>/identities")
@requires("idp:accounts.write")
def link(sub: str) -> Any:
    """Links a phone (verified: the service vouches for it) or an email (unverified)."""
    account = account_or_404(sub)
    body = json_object()
    kind = body.get("kind")
    if kind not in LINKABLE_KINDS:
        raise ApiProblem(400, "invalid_kind", f"kind must be one of {', '.join(LINKABLE_KINDS)}")
    value = _phone(body.get("value")) if kind == IdentityKind.PHONE else _email(body.get("value"))
    try:
        link_to_active_account(account, kind, value, api_actor(),
                               verified=kind == IdentityKind.PHONE,
                               proof=ProofMethod.OPERATOR if kind == IdentityKind.PHONE else None)
    except AccountUnavailable as unavailable:
        raise ApiProblem(409, "account_not_active", "the account is not active") from unavailable
    except IdentityTaken as taken:
        raise ApiProblem(409, "identity_taken",
                         "another account holds it verified: that is a merge") from taken
    response = _account_response(account_or_404(sub))
    response.status_code = 201
    return response


@bp.delete("/accounts/<sub>/identities/<int:identity_id>")
@requires("idp:accounts.write")
def unlink(sub: str, identity_id: int) -> Any:
    account = account_or_404(sub)
    identity = db.session.get(Identity, identity_id)
    if identity is None or identity.account_id != account.id:
        raise ApiProblem(404, "no_such_identity", "the account has no such identity")
    try:
        unlink_identity(identity, api_actor())
    except UnlinkRefused as refusal:
        raise ApiProblem(422, refusal.code, str(refusal)) from refusal
    except IdentityError as error:
        raise ApiProblem(409, "identity_error", str(error)) from error
    return _account_response(account_or_404(sub))


# --- sessions and refresh-token families -------------------------------------------------------


@bp.get("/accounts/<sub>/sessions")
@requires("idp:sessions")
def sessions(sub: str) -> Any:
    account = account_or_404(sub)
    rows = reversed(live_sessions(account))  # oldest first, as the API always listed them
    return jsonify({"sessions": [
        {"handle": session_handle(row.id), "channel": row.channel, "amr": row.amr.split(),
         "created_at": iso(row.created_at), "expires_at": iso(row.expires_at)}
        for row in rows
    ]})


@bp.delete("/accounts/<sub>/sessions/<handle>")
@requires("idp:sessions")
def end_session(sub: str, handle: str) -> Any:
    account = account_or_404(sub)
    row = next((s for s in live_sessions(account) if session_handle(s.id) == handle), None)
    if row is None or not sign_out_session(account, row.id, api_actor(), "management API"):
        raise ApiProblem(404, "no_such_session", "the account has no such live session")
    db.session.commit()
    return Response(status=204)


@bp.get("/accounts/<sub>/refresh-families")
@requires("idp:sessions")
def refresh_families(sub: str) -> Any:
    account = account_or_404(sub)
    families: dict[str, dict[str, Any]] = {}
    for row in db.session.scalars(
        select(RefreshToken).where(RefreshToken.account_id == account.id)
        .order_by(RefreshToken.issued_at)
    ):
        entry = families.setdefault(row.family, {
            "family": row.family, "client_id": row.client_id, "scope": row.scope,
            "issued_at": iso(row.issued_at), "revoked": True,
        })
        entry["last_issued_at"] = iso(row.issued_at)
        if row.revoked_at is None and row.rotated_at is None and row.expires_at > utcnow():
            entry["revoked"] = False
    return jsonify({"families": list(families.values())})


@bp.delete("/accounts/<sub>/refresh-families/<family>")
@requires("idp:sessions")
def revoke_refresh_family(sub: str, family: str) -> Any:
    account = account_or_404(sub)
    held = db.session.scalars(
        select(RefreshToken.client_id).where(
            RefreshToken.account_id == account.id, RefreshToken.family == family
        )
    ).first()
    if held is None:
        raise ApiProblem(404, "no_such_family", "the account has no such refresh-token family")
    revoke_family(family)
    audit.record("token.revoke", api_actor(), account.id, client_id=held, family=family[:8])
    db.session.commit()
    return Response(status=204)


@bp.get("/accounts/<sub>/merges")
@requires("idp:accounts.read")
def account_merges(sub: str) -> Any:
    return jsonify({"merges": [merge_view(row) for row in merges_of(account_or_404(sub).id)]})


# --- parsing -------------------------------------------------------------------------------------


def account_or_404(sub: str) -> Account:
    """By `sub` or a merged-away alias of it."""
    account = resolve_account(sub) if len(sub) <= 64 and "\x00" not in sub else None
    if account is None:
        raise ApiProblem(404, "no_such_account", "no such account")
    return account


def _account_response(account: Account) -> Response:
    view = account_view(account)
    response = jsonify(view)
    response.headers["ETag"] = etag_of(view)
    response.headers["Cache-Control"] = "no-store"
    return response


def _etags(header: str) -> set[str]:
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


def json_object() -> dict[str, Any]:
    if not request.is_json:
        raise ApiProblem(415, "json_required", "send application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiProblem(400, "invalid_body", "the body must be a JSON object")
    return body


def _claims(raw: Any, allow_null: bool = False) -> dict[str, Any]:
    """The claims asked for, each checked as the catalogue checks an `api` write (null clears
    one when `allow_null`); the first refused is a problem naming the claim and the reason."""
    if not isinstance(raw, dict):
        raise ApiProblem(400, "invalid_claims", "claims must be an object")
    for name, value in raw.items():
        if value is None and allow_null:
            continue
        if value in ("", {}) or value is None:
            raise ApiProblem(400, "invalid_claims", f"{str(name)[:32]} must have a value",
                             claim=str(name)[:32], reason="empty")
        try:
            check_write(name, value, CLAIM_WRITER)
        except ClaimRefused as refused:
            raise _claim_problem(refused) from refused
    return dict(raw)


def _claim_problem(refused: ClaimRefused) -> ApiProblem:
    """RFC 9457 §3.2 extension members `claim` and `reason` say which claim and why."""
    name = refused.name[:32]
    if refused.code == "unknown":
        writable = [c.name for c in catalogue().claims.values() if CLAIM_WRITER in c.writers]
        return ApiProblem(400, "invalid_claims",
                          f"unknown claim {name!r}; known: {', '.join(writable)}",
                          claim=name, reason="unknown claim")
    if refused.code == "writer":
        return ApiProblem(403, "claim_not_writable", f"{name}: {refused.reason}",
                          claim=name, reason=refused.reason)
    return ApiProblem(400, "invalid_claims", f"{name}: {refused.reason}",
                      claim=name, reason=refused.reason)


def _phone(raw: Any) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > 32 or "\x00" in raw:
        raise ApiProblem(400, "invalid_phone", "phone must be a phone number (E.164)")
    try:
        return normalize_phone(raw)
    except InvalidPhoneNumber as error:
        raise ApiProblem(400, "invalid_phone", "not a valid phone number") from error


def _email(raw: Any) -> str:
    if (not isinstance(raw, str) or "@" not in raw or len(raw) > 254 or "\x00" in raw
            or raw.strip() != raw):
        raise ApiProblem(400, "invalid_email", "value must be an email address")
    return raw.lower()


def _text_arg(name: str, required: bool = True) -> str:
    value = request.args.get(name, "")
    if "\x00" in value or len(value) > 255:
        raise ApiProblem(400, "invalid_query", f"{name} is too long or holds a NUL byte")
    if required and not value:
        raise ApiProblem(400, "invalid_query", f"{name} is required")
    return value.strip()


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiProblem(400, "invalid_query", f"{name} must be an integer from {low} to {high}")
    return int(raw)


def _encode_cursor(sub: str) -> str:
    return base64.urlsafe_b64encode(sub.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        padded = (cursor + "=" * (-len(cursor) % 4)).encode("ascii")
        decoded = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError) as error:
        raise ApiProblem(400, "invalid_cursor", "not a cursor this API gave out") from error
    if not decoded or len(decoded) > 64 or "\x00" in decoded:
        raise ApiProblem(400, "invalid_cursor", "not a cursor this API gave out")
    return decoded

