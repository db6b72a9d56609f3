"""A replay cache: "has this one-time value been seen before?", shared by every process.

In Redis when `IDP_REDIS_URL` is set (SET NX with an expiry), else in the database (a primary-key
insert, committed at once: a one-time value stays used whatever the request does next, and a second
process sees it). It fails closed: when the store cannot answer, the value counts as seen.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from idp.extensions import db
from idp.models_base import utcnow
from idp.oidc.models import UsedNonce

log = logging.getLogger(__name__)


def remember_once(key: str, expires_at: datetime) -> bool:
    """True the first time `key` is seen before `expires_at`; False on a replay or an outage.

    On the database the session is committed (call it before the request writes anything of its
    own: client authentication and second-factor checks come first)."""
    redis = current_app.extensions.get("idp_redis")
    ttl = max(1, int((expires_at - utcnow()).total_seconds()) + 1)
    if redis is not None:
        try:
            return bool(redis.set(f"idp:replay:{key}", 1, nx=True, ex=ttl))
        except Exception:  # noqa: BLE001 - any Redis failure means "cannot prove it is new"
            log.warning("replay cache unavailable; refusing the one-time value")
            return False
    try:
        with db.session.begin_nested():
            db.session.execute(
                delete(UsedNonce).where(UsedNonce.key == key, UsedNonce.expires_at <= utcnow())
            )
            db.session.add(UsedNonce(key=key[:255], expires_at=expires_at))
        db.session.commit()
        return True
    except IntegrityError:
        return False
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("replay cache unavailable; refusing the one-time value")
        return False
