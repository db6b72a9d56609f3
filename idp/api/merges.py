"""Merges through the management API: preview, merge, undo, history — the identity engine's
own calls, with its refusals (the codes the admin UI shows) as 422 problem documents. A merge
moves ways to sign in, so none that concerns an administrator's account is made here (403)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from sqlalchemy import select

from idp.api.accounts import account_or_404, record_reads
from idp.api.administrators import refuse_administrators
from idp.api.blueprint import api_actor, bp, requires
from idp.api.parsing import ROW_ID_ROUTE, json_object
from idp.api.problems import ApiProblem
from idp.api.representations import merge_view
from idp.extensions import db
from idp.identity.accounts import identities_of
from idp.identity.merge import UndoRefused, merge_accounts, undo_merge
from idp.identity.models import Account, MergeRecord
from idp.identity.rules import MergeRefused, MergeRule, Proof, check_merge


def _pair(body: dict[str, Any]) -> tuple[Account, Account, str]:
    survivor_sub, merged_sub = body.get("survivor"), body.get("merged")
    reason = body.get("reason")
    if not isinstance(survivor_sub, str) or not isinstance(merged_sub, str):
        raise ApiProblem(400, "invalid_body", "survivor and merged must be subs")
    if not isinstance(reason, str) or not 0 < len(reason) <= 255 or "\x00" in reason:
        raise ApiProblem(400, "invalid_body", "reason: why the two are one person (1-255 chars)")
    survivor, merged = account_or_404(survivor_sub), account_or_404(merged_sub)
    refuse_administrators(survivor, merged)
    return survivor, merged, reason


@bp.post("/merges/preview")
@requires("idp:merges")
def preview() -> Any:
    """Whether the rules allow it, and what would move; changes nothing."""
    survivor, merged, reason = _pair(json_object())
    refusal = None
    try:
        check_merge(survivor, merged, MergeRule.ADMIN_DECISION, Proof.admin(reason), api_actor(),
                    identities_of(survivor), identities_of(merged))
    except MergeRefused as refused:
        refusal = {"code": refused.code, "detail": str(refused)}
    moving = [{"id": i.id, "kind": i.kind, "namespace": i.namespace, "verified": i.verified}
              for i in identities_of(merged)]
    return jsonify({"survivor": survivor.id, "merged": merged.id, "allowed": refusal is None,
                    "refusal": refusal, "moving_identities": moving})


@bp.post("/merges")
@requires("idp:merges")
def merge() -> Any:
    survivor, merged, reason = _pair(json_object())
    try:
        record = merge_accounts(survivor, merged, rule=MergeRule.ADMIN_DECISION,
                                proof=Proof.admin(reason), actor=api_actor())
    except MergeRefused as refused:
        raise ApiProblem(422, refused.code, str(refused)) from refused
    response = jsonify(merge_view(record))
    response.status_code = 201
    return response


@bp.post(f"/merges/<{ROW_ID_ROUTE}:merge_id>/undo")
@requires("idp:merges")
def undo(merge_id: int) -> Any:
    record = db.session.get(MergeRecord, merge_id)
    if record is None:
        raise ApiProblem(404, "no_such_merge", "no such merge")
    refuse_administrators(db.session.get(Account, record.survivor_id),
                          db.session.get(Account, record.loser_id))
    try:
        undo_merge(record, api_actor())
    except UndoRefused as refused:
        raise ApiProblem(422, refused.code, str(refused)) from refused
    undone = db.session.get(MergeRecord, merge_id)
    assert undone is not None  # undoing a merge keeps its record
    return jsonify(merge_view(undone))


@bp.get("/merges")
@requires("idp:merges")
def history() -> Any:
    """Newest first; `sub` narrows to one account's merges."""
    query = select(MergeRecord).order_by(MergeRecord.id.desc()).limit(100)
    sub = request.args.get("sub")
    account_id = account_or_404(sub).id if sub else None
    if account_id:
        query = query.where((MergeRecord.survivor_id == account_id)
                            | (MergeRecord.loser_id == account_id))
    listed = [merge_view(row) for row in db.session.scalars(query)]
    if account_id:
        record_reads([account_id], "merges")
    return jsonify({"merges": listed})
