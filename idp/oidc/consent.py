"""Consent, remembered per client and scope set; first-party clients skip it."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from idp import statements_alone
from idp.extensions import db
from idp.models_base import utcnow
from idp.oidc.models import Client, Consent

# The scopes consented to, by a statement built once (no object loaded).
_CONSENTED = select(Consent.scopes).where(
    Consent.account_id == bindparam("account"), Consent.client_id == bindparam("client")
)


def covers(account_id: str, client: Client, scopes: set[str]) -> bool:
    """Read on every authorization request of a third-party client: on PostgreSQL through the
    driver, as a read of its own (`idp.statements_alone`, no SQLAlchemy execution or session
    per request)."""
    if client.is_first_party:
        return True
    values = {"account": account_id, "client": client.client_id}
    if db.engine.dialect.name == "postgresql":
        row = statements_alone.first_alone(_CONSENTED, values)
        consented = row["scopes"] if row is not None else None
    else:
        consented = db.session.execute(_CONSENTED, values).scalar()
    return consented is not None and scopes <= set(consented or [])


def remember(account_id: str, client: Client, scopes: set[str]) -> None:
    row = _find(account_id, client)
    if row is None:
        db.session.add(
            Consent(account_id=account_id, client_id=client.client_id, scopes=sorted(scopes))
        )
    else:
        row.scopes = sorted(set(row.scopes or []) | scopes)
        row.granted_at = utcnow()
    db.session.commit()


def _find(account_id: str, client: Client) -> Consent | None:
    return db.session.scalars(
        select(Consent).where(
            Consent.account_id == account_id, Consent.client_id == client.client_id
        )
    ).first()
