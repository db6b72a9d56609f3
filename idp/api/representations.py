"""What the management API says of an account: identities (never a credential), claims with
their sources, status, merges; and its ETag (RFC 9110 §8.8.3), a digest of exactly that.

Phones and emails are masked (`138****6183`, `a***@example.com`) unless the service holds
`idp:accounts.personal_data` (issue 27 item 3): the masking is the admin pages' own
(`idp.identity.masking`), applied to the identities, the claims and the served profile."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from idp.crypto import digest
from idp.extensions import db
from idp.identity.accounts import identities_of
from idp.identity.catalogue import served as served_value
from idp.identity.claims import profile_values
from idp.identity.masking import mask_field
from idp.identity.models import Account, IdentityKind, MergeRecord, ProfileClaim


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def account_view(account: Account) -> dict[str, Any]:
    identities = [
        {
            "id": identity.id,
            "kind": identity.kind,
            "namespace": identity.namespace,
            # A password identity's value is a credential id: never shown.
            "value": None if identity.kind == IdentityKind.PASSWORD else identity.value,
            "verified": identity.verified,
            "verified_by": identity.verified_by,
            "created_at": iso(identity.created_at),
        }
        for identity in identities_of(account)
    ]
    served = profile_values(account)
    claims = [
        {"name": row.name, "value": row.value, "source": row.source,
         "served": served.get(row.name) == (row.value, row.source),
         "updated_at": iso(row.updated_at)}
        for row in db.session.scalars(
            select(ProfileClaim).where(ProfileClaim.account_id == account.id)
            .order_by(ProfileClaim.name, ProfileClaim.source)
        )
    ]
    return {
        "sub": account.id,
        "status": account.status,
        "created_via": account.created_via,
        "created_at": iso(account.created_at),
        "profile_updated_at": iso(account.profile_updated_at),
        "merged_into": account.merged_into_id,
        "identities": identities,
        "claims": claims,
        # The served value of each claim, typed as the data dictionary declares it.
        "profile": {name: served_value(name, value) for name, (value, _) in sorted(served.items())},
        "merges": [merge_view(row) for row in merges_of(account.id)],
    }


def merges_of(account_id: str) -> list[MergeRecord]:
    return list(db.session.scalars(
        select(MergeRecord)
        .where(or_(MergeRecord.survivor_id == account_id, MergeRecord.loser_id == account_id))
        .order_by(MergeRecord.id)
    ))


def merge_view(record: MergeRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "survivor": record.survivor_id,
        "merged": record.loser_id,
        "rule": record.rule,
        "actor": record.actor,
        "created_at": iso(record.created_at),
        "undone_at": iso(record.undone_at),
    }


def masked_view(view: dict[str, Any]) -> dict[str, Any]:
    """`view` as a service without `idp:accounts.personal_data` reads it: every phone and email
    masked, in the identities (by kind), the claims and the profile (by claim name)."""
    return {
        **view,
        "identities": [{**identity, "value": mask_field(identity["kind"], identity["value"])}
                       for identity in view["identities"]],
        "claims": [{**claim, "value": mask_field(claim["name"], claim["value"])}
                   for claim in view["claims"]],
        "profile": {name: mask_field(name, value) for name, value in view["profile"].items()},
    }


def shown_view(view: dict[str, Any], personal_data: bool) -> dict[str, Any]:
    return view if personal_data else masked_view(view)


def etag_of(view: dict[str, Any], masked: bool = False) -> str:
    """A digest of the full `view` whichever form is served, so that a change hidden by the mask
    (a middle digit of a phone) still changes the tag; the masked form has a tag of its own, as a
    strong validator is unique across the representations of a resource (RFC 9110 §8.8.1)."""
    payload = json.dumps(view, sort_keys=True, separators=(",", ":")).encode()
    if masked:
        payload += b"\x00masked"
    return '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'


def session_handle(session_id: str) -> str:
    """A login session's id is a bearer secret (the OIDC `sid`): the API names it by a digest."""
    return digest(session_id)[:24]
