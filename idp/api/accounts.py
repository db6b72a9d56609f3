"""Accounts through the management API: search, read, create, update claims (with If-Match),
disable/enable, link/unlink, sessions and refresh-token families. Views parse, call the identity
engine, and render; the engine's refusals become problem documents.

Claims: every claim of the data dictionary (`identity/catalogue.py`) whose writers include `api`,
checked by the catalogue's validators and stored with the source `api`.

A phone the API links (or creates an account with) is unverified unless the service holds
`idp:phones.vouch` and says `verified`: a verified phone signs in by SMS, so vouching for one is
a power the operator grants deliberately (issue 23 item 3). Every read of an account is in the
account's audit trail as `account.read` by `client:<client_id>`.

Phones and emails in the answers are masked (`138****6183`) unless the service holds
`idp:accounts.personal_data`; a read that showed them in full says `personal_data: true` in its
audit record (issue 27 item 3). A search by a full phone finds the account either way."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Response, jsonify, request, url_for
from sqlalchemy import select

from idp.api.administrators import refuse_administrators
from idp.api.blueprint import api_actor, bp, holds_scope, requires
from idp.api.parsing import (
    CLAIM_WRITER,
    ROW_ID_ROUTE,
    claims_from,
    decode_cursor,
    email_from,
    encode_cursor,
    int_arg,
    json_object,
    phone_from,
    strong_etags,
    text_arg,
    vouched_for,
)
from idp.api.problems import ApiProblem
from idp.api.representations import (
    account_view,
    etag_of,
    iso,
    merge_view,
    merges_of,
    session_handle,
    shown_view,
)
from idp.extensions import db
from idp.identity import audit, status
from idp.identity.accounts import (
    IdentityError,
    IdentityTaken,
    create_account,
    link_identity,
    resolve_account,
    write_claim,
)
from idp.identity.links import AccountUnavailable, link_to_active_account, unlink_identity
from idp.identity.lookup import matching_account_ids
from idp.identity.models import Account, AccountStatus, Identity, IdentityKind
from idp.identity.rules import ProofMethod, UnlinkRefused
from idp.identity.sign_out import live_sessions, sign_out_session
from idp.identity.transactions import lock_accounts, run_in_transaction
from idp.models_base import utcnow
from idp.oidc.grants import revoke_family
from idp.oidc.models import RefreshToken
from idp.scopes import PERSONAL_DATA

MAX_PAGE = 100
LINKABLE_KINDS = (IdentityKind.EMAIL, IdentityKind.PHONE)


# --- reading -------------------------------------------------------------------------------------


@bp.get("/accounts")
@requires("idp:accounts.read")
def search() -> Any:
    """Any identifier (phone in any spelling, email, openid, unionid, sub, alias, part of a
    name); pages follow `next_cursor` (the last `sub` seen, opaque)."""
    text = text_arg("q", required=False)
    limit = int_arg("limit", 20, 1, MAX_PAGE)
    after = decode_cursor(request.args.get("cursor"))
    query = select(Account).order_by(Account.id).limit(limit + 1)
    if text:
        query = query.where(Account.id.in_(matching_account_ids(text)))
    if after:
        query = query.where(Account.id > after)
    rows = list(db.session.scalars(query))
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    personal_data = shows_personal_data()
    views = [shown_view(account_view(a), personal_data) for a in page]
    record_reads([a.id for a in page], "search", personal_data=personal_data)
    return jsonify({"accounts": views, "next_cursor": next_cursor})


@bp.get("/accounts/<sub>")
@requires("idp:accounts.read")
def read(sub: str) -> Any:
    account = account_or_404(sub)
    response = _account_response(account)
    record_reads([account.id], "account", personal_data=shows_personal_data())
    return response


def shows_personal_data() -> bool:
    """Whether the caller sees phones and emails in full (else masked, issue 27 item 3)."""
    return holds_scope(PERSONAL_DATA)


def record_reads(account_ids: Iterable[str], what: str, personal_data: bool = False) -> None:
    """Who read whose account, and when (issue 23 item 14): an `account.read` row in the audit
    trail of each account the answer shows, committed before the answer leaves; with
    `personal_data: true` when the answer showed its phones and emails unmasked."""
    actor = api_actor()
    details: dict[str, Any] = {"personal_data": True} if personal_data else {}
    for account_id in dict.fromkeys(account_ids):
        audit.record("account.read", actor, account_id, what=what, **details)
    db.session.commit()


# --- creating and changing -----------------------------------------------------------------------


@bp.post("/accounts")
@requires("idp:accounts.write")
def create() -> Any:
    """A new account with a phone (unverified, or vouched for: `phone_verified`) and claims."""
    body = json_object()
    phone = phone_from(body.get("phone"))
    vouched = vouched_for(body.get("phone_verified", False))
    claims = claims_from(body.get("claims", {}))
    actor = api_actor()

    def work() -> Account:
        if _phone_is_held(phone):
            raise ApiProblem(409, "phone_taken", "another account holds this phone")
        account = create_account(actor, "api")
        link_identity(account, IdentityKind.PHONE, phone, actor, verified=vouched,
                      proof=ProofMethod.OPERATOR if vouched else None)
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


def _phone_is_held(phone: str) -> bool:
    """By any account, verified or not: the service finds that account rather than a twin."""
    return db.session.scalars(
        select(Identity.id).where(Identity.value_is(phone, IdentityKind.PHONE))
        .limit(1)
    ).first() is not None


@bp.patch("/accounts/<sub>/claims")
@requires("idp:accounts.write")
def update_claims(sub: str) -> Any:
    """Sets (or, with null, removes) what the company says of profile claims. `If-Match` with
    the account's ETag is required: a change made meanwhile is not overwritten (412)."""
    account = account_or_404(sub)
    wanted = request.headers.get("If-Match")
    if not wanted:
        raise ApiProblem(428, "if_match_required", "send If-Match with the account's ETag")
    claims = claims_from(json_object(), allow_null=True)
    actor = api_actor()
    account_id = account.id

    def work() -> Account:
        locked = lock_accounts(account_id).get(account_id)
        if locked is None:
            raise ApiProblem(404, "no_such_account", "no such account")
        current = etag_of(account_view(locked), masked=not shows_personal_data())
        if wanted.strip() != "*" and current not in strong_etags(wanted):
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
    """Links a phone (unverified, or vouched for: `verified` with `idp:phones.vouch`) or an
    email (unverified). Never to an administrator's account."""
    account = account_or_404(sub)
    refuse_administrators(account)
    body = json_object()
    kind = body.get("kind")
    if kind not in LINKABLE_KINDS:
        raise ApiProblem(400, "invalid_kind", f"kind must be one of {', '.join(LINKABLE_KINDS)}")
    parse = phone_from if kind == IdentityKind.PHONE else email_from
    value = parse(body.get("value"))
    if kind == IdentityKind.EMAIL and body.get("verified", False) is not False:
        raise ApiProblem(400, "invalid_body", "an email is linked unverified")
    vouched = vouched_for(body.get("verified", False))
    try:
        link_to_active_account(account, kind, value, api_actor(), verified=vouched,
                               proof=ProofMethod.OPERATOR if vouched else None,
                               check=refuse_administrators)
    except AccountUnavailable as unavailable:
        raise ApiProblem(409, "account_not_active", "the account is not active") from unavailable
    except IdentityTaken as taken:
        raise ApiProblem(409, "identity_taken",
                         "another account holds it verified: that is a merge") from taken
    response = _account_response(account_or_404(sub))
    response.status_code = 201
    return response


@bp.delete(f"/accounts/<sub>/identities/<{ROW_ID_ROUTE}:identity_id>")
@requires("idp:accounts.write")
def unlink(sub: str, identity_id: int) -> Any:
    account = account_or_404(sub)
    refuse_administrators(account)
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
    listed = [
        {"handle": session_handle(row.id), "channel": row.channel, "amr": row.amr.split(),
         "created_at": iso(row.created_at), "expires_at": iso(row.expires_at)}
        for row in rows
    ]
    record_reads([account.id], "sessions")
    return jsonify({"sessions": listed})


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
    record_reads([account.id], "refresh_families")
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
    account = account_or_404(sub)
    listed = [merge_view(row) for row in merges_of(account.id)]
    record_reads([account.id], "merges")
    return jsonify({"merges": listed})


# --- parsing -------------------------------------------------------------------------------------


def account_or_404(sub: str) -> Account:
    """By `sub` or a merged-away alias of it."""
    account = resolve_account(sub) if len(sub) <= 64 and "\x00" not in sub else None
    if account is None:
        raise ApiProblem(404, "no_such_account", "no such account")
    return account


def _account_response(account: Account) -> Response:
    view = account_view(account)
    personal_data = shows_personal_data()
    response = jsonify(shown_view(view, personal_data))
    response.headers["ETag"] = etag_of(view, masked=not personal_data)
    response.headers["Cache-Control"] = "no-store"
    return response
