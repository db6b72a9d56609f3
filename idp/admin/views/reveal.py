"""Revealing one masked phone or email (issue 27 item 3): an explicit action with a reason,
written to the audit trail (who, whose, which field, why) and rate-limited per admin."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template
from flask_babel import gettext as _

from idp.admin.blueprint import admin_actor, bp, current_admin
from idp.admin.forms import RevealForm
from idp.admin.views.helpers import identity_or_404
from idp.extensions import db
from idp.identity import audit
from idp.identity.masking import EMAIL_FIELDS, PHONE_FIELDS, mask_field
from idp.security.throttle import Throttle, Throttled

reveals_by_admin = Throttle("admin-reveal", ("10/hour", "50/day"), moving=True)


@bp.route("/accounts/<account_id>/identities/<int:identity_id>/reveal", methods=["GET", "POST"])
def identity_reveal(account_id: str, identity_id: int) -> Any:
    account, identity = identity_or_404(account_id, identity_id)
    if identity.kind not in PHONE_FIELDS | EMAIL_FIELDS:
        abort(404)
    form = RevealForm()
    masked = mask_field(identity.kind, identity.value)
    if not form.validate_on_submit():
        return render_template("admin/reveal.html", account=account, identity=identity,
                               masked=masked, form=form, value=None)
    try:
        reveals_by_admin.acquire(current_admin().id)
    except Throttled as error:
        return render_template(
            "admin/reveal.html", account=account, identity=identity, masked=masked, form=form,
            value=None, error=_("Too many reveals. Try again in %(minutes)d minutes.",
                                minutes=max(1, error.retry_after // 60)),
        ), 429, {"Retry-After": str(error.retry_after)}
    audit.record("admin.reveal", admin_actor(), account.id, reason=form.reason.data,
                 field=identity.kind, identity_id=identity.id)
    db.session.commit()
    return render_template("admin/reveal.html", account=account, identity=identity,
                           masked=masked, form=form, value=identity.value)
