"""Finding accounts, one account's page, and the actions on it."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select

from idp.admin import account_actions, four_eyes
from idp.admin.access import admin_may
from idp.admin.account_actions import ActionRefused
from idp.admin.blueprint import admin_actor, bp, current_admin
from idp.admin.forms import ConfirmForm, MoveIdentityForm
from idp.admin.search import search_accounts
from idp.admin.views.helpers import account_or_404, confirm_page, identity_or_404, page_number
from idp.extensions import db
from idp.identity.accounts import IdentityError, identities_of
from idp.identity.claims import profile_values
from idp.identity.links import move_identity, unlink_identity
from idp.identity.masking import mask_field, mask_phone
from idp.identity.models import AuditEvent, Identity, IdentityKind, MergeRecord
from idp.identity.rules import UnlinkRefused
from idp.identity.sign_out import live_sessions
from idp.oidc.models import Client, Consent


@bp.get("/accounts")
def accounts() -> Any:
    query = request.args.get("q", "")
    found = search_accounts(query, page_number())
    return render_template("admin/accounts.html", query=query, found=found)


@bp.get("/accounts/<account_id>")
def account_detail(account_id: str) -> Any:
    account = account_or_404(account_id)
    client_names = dict(db.session.execute(select(Client.client_id, Client.name)).all())
    return render_template(
        "admin/account.html",
        account=account,
        claims=profile_values(account),
        identities=identities_of(account),
        sessions=live_sessions(account),
        tokens=account_actions.live_refresh_tokens(account),
        consents=db.session.scalars(select(Consent).where(Consent.account_id == account.id)),
        audit=db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.account_id == account.id)
            .order_by(AuditEvent.id.desc())
            .limit(50)
        ).all(),
        merges=db.session.scalars(
            select(MergeRecord)
            .where(or_(MergeRecord.survivor_id == account.id, MergeRecord.loser_id == account.id))
            .order_by(MergeRecord.id.desc())
        ).all(),
        client_names=client_names,
        move_form=MoveIdentityForm(),
    )


def _back(account_id: str) -> str:
    return url_for("admin.account_detail", account_id=account_id)


@bp.route("/accounts/<account_id>/disable", methods=["GET", "POST"])
def account_disable(account_id: str) -> Any:
    account = account_or_404(account_id)
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        return _done(account_id, lambda: account_actions.disable_account(account, admin_actor()),
                     _("The account is disabled."))
    return confirm_page(
        _("Disable this account?"),
        [_("Nobody can sign in to this account until it is enabled again."),
         _("Every IdP session of the account ends now."),
         _("Every access token issued so far stops working; refresh tokens are refused while "
           "the account is disabled.")],
        url_for("admin.account_disable", account_id=account_id),
        back=_back(account_id),
    )


@bp.route("/accounts/<account_id>/enable", methods=["GET", "POST"])
def account_enable(account_id: str) -> Any:
    account = account_or_404(account_id)
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        return _done(account_id, lambda: account_actions.enable_account(account, admin_actor()),
                     _("The account is enabled."))
    return confirm_page(
        _("Enable this account?"),
        [_("The account can sign in again. Tokens issued before it was disabled stay dead.")],
        url_for("admin.account_enable", account_id=account_id),
        back=_back(account_id), danger=False,
    )


@bp.route("/accounts/<account_id>/sessions/<session_prefix>/end", methods=["GET", "POST"])
def session_end(account_id: str, session_prefix: str) -> Any:
    account = account_or_404(account_id)
    matching = [s for s in live_sessions(account) if s.id[:8] == session_prefix]
    if len(matching) != 1:
        abort(404)
    login_session = matching[0]
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        return _done(
            account_id,
            lambda: account_actions.end_login_session(account, login_session.id, admin_actor()),
            _("The session has ended."),
        )
    return confirm_page(
        _("End this session?"),
        [_("The browser signed in with session %(sid)s (%(channel)s, since %(when)s) is signed "
           "out of the IdP and must sign in again.", sid=session_prefix,
           channel=login_session.channel, when=login_session.created_at.strftime("%Y-%m-%d %H:%M")),
         _("The refresh tokens issued in this session are revoked, and applications that "
           "registered a back-channel logout URI are told.")],
        request.path, back=_back(account_id),
    )


@bp.route("/accounts/<account_id>/tokens/<family_prefix>/revoke", methods=["GET", "POST"])
def token_revoke(account_id: str, family_prefix: str) -> Any:
    account = account_or_404(account_id)
    matching = [t for t in account_actions.live_refresh_tokens(account)
                if t.family[:8] == family_prefix]
    if len(matching) != 1:
        abort(404)
    token = matching[0]
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        return _done(
            account_id,
            lambda: account_actions.revoke_refresh_family(account, token.family, admin_actor()),
            _("The token is revoked."),
        )
    client = db.session.get(Client, token.client_id)
    return confirm_page(
        _("Revoke this token?"),
        [_("The refresh token of %(client)s (scope: %(scope)s) and every token rotated from "
           "it stop working now, together with the access token issued with it.",
           client=client.name if client else token.client_id, scope=token.scope),
         _("The application must send the person through sign-in again.")],
        request.path, back=_back(account_id),
    )


@bp.route("/accounts/<account_id>/reset-code", methods=["GET", "POST"])
def reset_code(account_id: str) -> Any:
    account = account_or_404(account_id)
    phones = [i.value for i in identities_of(account, IdentityKind.PHONE) if i.verified]
    if not phones:
        flash(_("This account has no verified phone to send a code to."), "error")
        return redirect(_back(account_id))
    phone = phones[0]
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        return _done(
            account_id,
            lambda: account_actions.send_password_reset(account, phone, admin_actor()),
            _("A password-reset code was sent to %(phone)s.", phone=mask_phone(phone)),
        )
    return confirm_page(
        _("Send a password-reset code?"),
        [_("A one-time code goes by SMS to %(phone)s; any earlier reset code stops working.",
           phone=mask_phone(phone)),
         _("The person uses it on the \"Forgot your password?\" page. The current password keeps "
           "working until they set a new one.")],
        request.path, back=_back(account_id), danger=False,
    )


@bp.route("/accounts/<account_id>/identities/<int:identity_id>/unlink", methods=["GET", "POST"])
def identity_unlink(account_id: str, identity_id: int) -> Any:
    account, identity = identity_or_404(account_id, identity_id)
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        try:
            unlink_identity(identity, admin_actor())
        except UnlinkRefused as refusal:
            flash(_("Refused: %(reason)s", reason=_refusal_text(refusal.code, str(refusal))),
                  "error")
            return redirect(_back(account_id))
        flash(_("The identity was unlinked."), "info")
        return redirect(_back(account_id))
    return confirm_page(
        _("Unlink this identity?"),
        [_("%(kind)s %(value)s is removed from this account; it can no longer be used to find "
           "or sign in to it.", kind=identity.kind, value=_display(identity)),
         _("The identity engine refuses this if it is the account's last way to sign in.")],
        request.path, back=_back(account_id),
    )


@bp.route("/accounts/<account_id>/link", methods=["GET", "POST"])
def identity_move(account_id: str) -> Any:
    """Link an identity held by another account to this one."""
    account = account_or_404(account_id)
    form = MoveIdentityForm()
    if not form.validate_on_submit():
        return redirect(_back(account_id))
    candidates = [i for i in account_actions.identities_matching(form.identifier.data or "")
                  if i.account_id != account.id]
    if not candidates:
        flash(_("No other account holds a verified identity like that."), "error")
        return redirect(_back(account_id))
    chosen = request.form.get("identity_id", type=int)
    identity = next((i for i in candidates if i.id == chosen), None)
    if identity is not None and request.form.get("confirmed") == "yes":
        if four_eyes.needs_second_admin("move"):
            reason = (request.form.get("reason") or "").strip()
            if not reason:
                flash(_("Give a reason: it goes into the audit log."), "error")
                return redirect(_back(account_id))
            proposal = four_eyes.propose("move", {
                "identity_id": identity.id, "from_account_id": identity.account_id,
                "target_id": account.id,
            }, reason, current_admin())
            from idp.admin.views.merges import proposed

            return proposed(proposal.id)
        if not admin_may("merges.carry_out"):
            abort(403)
        try:
            move_identity(identity, account, admin_actor())
        except (UnlinkRefused, ActionRefused, IdentityError) as refusal:
            code = getattr(refusal, "code", "")
            flash(_("Refused: %(reason)s", reason=_refusal_text(code, str(refusal))), "error")
            return redirect(_back(account_id))
        flash(_("The identity now belongs to this account."), "info")
        return redirect(_back(account_id))
    return render_template("admin/link_confirm.html", account=account, form=form,
                           candidates=candidates, ask_reason=four_eyes.needs_second_admin("move"))


def _done(account_id: str, action: Any, message: str) -> Any:
    try:
        action()
    except ActionRefused as refusal:
        flash(_("Refused: %(reason)s", reason=str(refusal)), "error")
        return redirect(_back(account_id))
    flash(message, "info")
    return redirect(_back(account_id))


def _display(identity: Identity) -> str:
    if identity.kind == IdentityKind.PASSWORD:
        return _("(credential)")
    return str(mask_field(identity.kind, identity.value))


def _refusal_text(code: str, message: str) -> str:
    texts = {
        "last_way_to_log_in": _("this is the account's last way to sign in; link another one "
                                "first."),
    }
    return texts.get(code, message)
