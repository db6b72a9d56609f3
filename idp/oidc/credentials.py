"""The protocol's part when the engine ends credentials, erases an account or merges two: the
hooks `idp.identity.hooks` calls, registered here at start-up (`init_app`).

The token and consent tables are the protocol's and only `idp.oidc` touches them: the engine
says which account or session is over, and this module revokes its refresh tokens (listing the
access tokens issued beside them), expires its unused codes, erases or moves its consents. All
in the caller's transaction. (Back-channel logout is the event outbox's: `idp.events.listeners`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Flask, current_app
from sqlalchemy import CursorResult, delete, select, update

from idp.extensions import db
from idp.identity.hooks import MergeHook, hooks_of
from idp.oidc.models import AuthorizationCode, Consent, RefreshToken, RevokedAccessToken
from idp.oidc.releases import erase_releases


def init_app(app: Flask) -> None:
    hooks = hooks_of(app)
    hooks.session_ended.append(end_session_tokens)
    hooks.credentials_ended.append(end_account_tokens)
    hooks.account_erased.append(erase_consents)
    hooks.account_erased.append(erase_releases)
    hooks.accounts_merged.append(MergeHook("consents", merge_consents, restore_consents))


def end_session_tokens(account_id: str, session_id: str, now: datetime,
                       revoke_tokens: bool) -> None:
    """With `revoke_tokens`, the refresh tokens issued in the ended session die (with the access
    tokens beside them)."""
    if revoke_tokens:
        revoke_refresh_tokens(
            db.session.scalars(
                select(RefreshToken).where(
                    RefreshToken.session_id == session_id, RefreshToken.revoked_at.is_(None)
                )
            ),
            now,
        )


def end_account_tokens(account_id: str, now: datetime,
                       since: datetime | None) -> dict[str, int]:
    """Revokes the account's refresh tokens and expires its unused codes (those issued `since`,
    when given). Its access tokens die by `tokens_valid_after`, which the engine sets."""
    tokens = update(RefreshToken).where(
        RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None)
    )
    if since is not None:
        tokens = tokens.where(RefreshToken.issued_at >= since)
    codes = update(AuthorizationCode).where(
        AuthorizationCode.account_id == account_id,
        AuthorizationCode.used_at.is_(None),
        AuthorizationCode.expires_at > now,
    )
    options = {"synchronize_session": False}
    revoked = db.session.execute(tokens.values(revoked_at=now).execution_options(**options))
    db.session.execute(codes.values(expires_at=now).execution_options(**options))
    return {"refresh_tokens": cast(CursorResult[Any], revoked).rowcount}


def revoke_refresh_tokens(tokens: Iterable[RefreshToken], now: datetime) -> int:
    """Revokes these refresh tokens and lists the access tokens issued beside them."""
    ttl = timedelta(seconds=int(current_app.config["IDP_ACCESS_TOKEN_TTL"]))
    count = 0
    for token in tokens:
        if token.revoked_at is None:
            token.revoked_at = now
            count += 1
        if token.access_jti and db.session.get(RevokedAccessToken, token.access_jti) is None:
            db.session.add(
                RevokedAccessToken(
                    jti=token.access_jti, expires_at=token.access_expires_at or now + ttl
                )
            )
    return count


def erase_consents(account_id: str) -> dict[str, int]:
    result = db.session.execute(
        delete(Consent).where(Consent.account_id == account_id)
        .execution_options(synchronize_session=False)
    )
    return {Consent.__tablename__: cast(CursorResult[Any], result).rowcount}


def merge_consents(loser_id: str, survivor_id: str) -> dict[str, Any]:
    """The loser's consents move; where both consented to a client, the survivor's scopes become
    the union. Returns what `restore_consents` needs."""
    mine = {
        row.client_id: row
        for row in db.session.scalars(select(Consent).where(Consent.account_id == survivor_id))
    }
    moved: list[int] = []
    united: list[dict[str, Any]] = []
    for row in db.session.scalars(
        select(Consent).where(Consent.account_id == loser_id).order_by(Consent.id)
    ).all():
        kept = mine.get(row.client_id)
        if kept is None:
            row.account_id = survivor_id
            moved.append(row.id)
            continue
        union = sorted(set(kept.scopes or []) | set(row.scopes or []))
        united.append(
            {
                "client_id": row.client_id,
                "loser_scopes": list(row.scopes or []),
                "loser_granted_at": row.granted_at.isoformat(),
                "survivor_scopes": list(kept.scopes or []),
                "merged_scopes": union,
            }
        )
        kept.scopes = union
        db.session.delete(row)
    db.session.flush()
    return {"moved": moved, "united": united}


def restore_consents(consents: dict[str, Any], survivor_id: str, loser_id: str) -> None:
    db.session.execute(
        update(Consent)
        .where(Consent.id.in_(consents["moved"]), Consent.account_id == survivor_id)
        .values(account_id=loser_id)
        .execution_options(synchronize_session="fetch")
    )
    for row in consents["united"]:
        db.session.add(
            Consent(
                account_id=loser_id,
                client_id=row["client_id"],
                scopes=row["loser_scopes"],
                granted_at=datetime.fromisoformat(row["loser_granted_at"]),
            )
        )
        kept = db.session.scalars(
            select(Consent).where(
                Consent.account_id == survivor_id, Consent.client_id == row["client_id"]
            )
        ).first()
        if kept is not None and sorted(kept.scopes or []) == row["merged_scopes"]:
            kept.scopes = row["survivor_scopes"]
