"""After a second factor is added, the offer to sign out everywhere else.

What was signed in before the factor keeps working without it (no `mfa`) until it ends: other
browsers' sessions, the mini-program's refresh tokens, apps holding `offline_access`. Right after
an enrolment (`offer_after_enrolment`), the two-step page offers to end them all; the engine
does it (`idp.oidc.sign_out_elsewhere`). The page says so in any case.
"""

from __future__ import annotations

import time
from typing import Any

from flask import abort, flash, redirect, session, url_for
from flask_babel import gettext as _

from idp.account_centre.blueprint import bp, me, signed_in
from idp.account_centre.forms import ActionForm
from idp.accounts.sessions import current_session
from idp.extensions import db
from idp.identity.audit import Actor
from idp.identity.models import Account
from idp.oidc.sign_out_elsewhere import sign_out_elsewhere, signed_in_elsewhere

OFFER_KEY = "account_centre_sign_out_elsewhere"
OFFER_TTL = 900  # the offer stays on the two-step page for a quarter of an hour


def offer_after_enrolment() -> None:
    """Called when a factor was just added: the two-step page makes the offer."""
    session[OFFER_KEY] = int(time.time())


def offer_open(account: Account) -> bool:
    """The offer stands: a factor was added lately and something is signed in elsewhere."""
    since = session.get(OFFER_KEY)
    here = current_session()
    if not isinstance(since, int) or here is None or time.time() - since > OFFER_TTL:
        return False
    return signed_in_elsewhere(account, here.id)


@bp.post("/two-factor/sign-out-elsewhere")
@signed_in
def sign_out_everywhere_else() -> Any:
    account = me()
    if not ActionForm().validate_on_submit():
        abort(400)
    here = current_session()
    assert here is not None  # `signed_in`
    sign_out_elsewhere(account, here.id, Actor.user(account.id))
    db.session.commit()
    session.pop(OFFER_KEY, None)
    flash(_("Signed out everywhere else. Other devices and apps must sign in again, with your "
            "second factor."), "info")
    return redirect(url_for("account_centre.two_factor")), 303
