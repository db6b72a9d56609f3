""""Download my data" (PIPL Art. 45); who received it is on the apps page (`apps.py`). The
download is a POST with the CSRF token, after a sign-in of the last minutes
(`fresh_auth`), counted in the shared export throttle and audited; it is an attachment that no
cache keeps."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, render_template
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, fresh_auth, me, signed_in
from idp.account_centre.forms import ActionForm
from idp.account_centre.personal_data import (
    EXPORTS,
    build_export,
    export_filename,
    export_json,
    record_export,
)
from idp.extensions import db
from idp.models_base import utcnow
from idp.security.throttle import Throttled


@bp.get("/data")
@signed_in
def my_data() -> Any:
    return render_template("account_centre/my_data.html", form=ActionForm())


@bp.post("/data/download")
@signed_in
@fresh_auth(back="account_centre.my_data")
def download_my_data() -> Any:
    account = me()
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        EXPORTS.acquire(account.id)
    except Throttled as refused:
        flash(_("You downloaded your data a few times already. Try again in %(minutes)d "
                "minutes.", minutes=max(1, refused.retry_after // 60)), "error")
        return render_template("account_centre/my_data.html", form=ActionForm()), 429, {
            "Retry-After": str(refused.retry_after)}
    now = utcnow()
    body = export_json(build_export(account, now))
    record_export(account, "account centre")
    db.session.commit()
    return attachment(body, export_filename(account, now))


def attachment(body: str, filename: str) -> Response:
    """A JSON download that no cache or proxy keeps (RFC 6266 §4; RFC 9111 §5.2.2.5)."""
    response = Response(body, content_type="application/json; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
