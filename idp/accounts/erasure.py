"""The account domain's part of erasing an account (`idp.identity.deletion.erase_account`): its
second factors, recovery codes, accepted terms and login history go. Registered with the engine
at start-up (`idp.identity.hooks`), which imports nothing of this domain."""

from __future__ import annotations

from typing import Any, cast

from flask import Flask
from sqlalchemy import CursorResult, delete

from idp.accounts.models import LoginEvent, TermsAcceptance
from idp.extensions import db
from idp.identity.hooks import hooks_of
from idp.second_factor.models import RecoveryCode, SecondFactor


def init_app(app: Flask) -> None:
    hooks_of(app).account_erased.append(erase_account_rows)


def erase_account_rows(account_id: str) -> dict[str, int]:
    """In the caller's transaction; returns how many rows went, per table."""
    removed: dict[str, int] = {}
    for model in (SecondFactor, RecoveryCode, TermsAcceptance, LoginEvent):
        result = db.session.execute(
            delete(model).where(model.account_id == account_id)
            .execution_options(synchronize_session=False)
        )
        removed[model.__tablename__] = cast(CursorResult[Any], result).rowcount
    return removed
