"""Small helpers shared by the admin views."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request, url_for

from idp.accounts.views import safe_next
from idp.admin.forms import ConfirmForm
from idp.extensions import db
from idp.identity.models import Account, Identity


def admin_next(target: str | None) -> str:
    """A local path inside the admin UI, else the dashboard (no open redirect)."""
    path = safe_next(target)
    return path if path.startswith("/admin/") else url_for("admin.dashboard")


def account_or_404(account_id: str) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        abort(404)
    return account


def identity_or_404(account_id: str, identity_id: int) -> tuple[Account, Identity]:
    """The account and one of its identities; 404 when either is not there or the identity is
    another account's."""
    account = account_or_404(account_id)
    identity = db.session.get(Identity, identity_id)
    if identity is None or identity.account_id != account.id:
        abort(404)
    return account, identity


def confirm_page(
    title: str, consequences: list[str], action: str, *, back: str, danger: bool = True,
    form: Any = None, ask_reason: bool = False,
) -> Any:
    """The confirmation step: what will happen, in full, and one button that does it."""
    return render_template(
        "admin/confirm.html",
        title=title,
        consequences=consequences,
        action=action,
        back=back,
        danger=danger,
        form=form or ConfirmForm(),
        ask_reason=ask_reason,
    )


def page_number() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1
