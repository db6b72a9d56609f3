"""The admin forms. Flask-WTF adds (and checks) the CSRF token of each; `ConfirmForm` is the
second step of every destructive action."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from idp.events.sets import ACCOUNT_EVENT_TYPES
from idp.oidc.clients import AUTH_METHODS, KNOWN_GRANT_TYPES
from idp.wechat.models import WeChatAppKind


class TotpForm(FlaskForm):
    code = StringField(_l("Six-digit code"), validators=[DataRequired(), Length(min=6, max=8)])
    next = HiddenField()


class ConfirmForm(FlaskForm):
    """Only the CSRF token: the page around it says what will happen."""


class RevealForm(FlaskForm):
    reason = StringField(_l("Reason (kept in the audit log)"),
                         validators=[DataRequired(), Length(max=200)])


class RoleGrantForm(FlaskForm):
    who = StringField(_l("Phone or account id"), validators=[DataRequired(), Length(max=64)])
    role = SelectField(_l("Role"), choices=[
        SelectChoice("support", _l("support")), SelectChoice("identity", _l("identity")),
        SelectChoice("security", _l("security")), SelectChoice("auditor", _l("auditor")),
    ])
    reason = StringField(_l("Reason (kept in the audit log)"),
                         validators=[DataRequired(), Length(max=200)])


class MergeForm(FlaskForm):
    survivor_id = HiddenField(validators=[DataRequired(), Length(max=36)])
    loser_id = HiddenField(validators=[DataRequired(), Length(max=36)])
    reason = StringField(
        _l("Reason (kept in the audit log)"), validators=[DataRequired(), Length(max=200)]
    )


class MoveIdentityForm(FlaskForm):
    identifier = StringField(
        _l("Phone, email, openid or unionid held by another account"),
        validators=[DataRequired(), Length(max=255)],
    )


class DismissForm(FlaskForm):
    key = HiddenField(validators=[DataRequired(), Length(max=400)])


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ClientForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    public = BooleanField(_l("Public client (no secret: mini-programs, single-page apps)"))
    redirect_uris = TextAreaField(_l("Redirect URIs, one per line"), validators=[Optional()])
    grant_types = MultiCheckboxField(
        _l("Grant types"), choices=[SelectChoice(grant) for grant in KNOWN_GRANT_TYPES]
    )
    scope = StringField(_l("Allowed scopes"), validators=[Length(max=300)])
    first_party = BooleanField(_l("First party (no consent screen)"))
    wechat_appid = StringField(_l("WeChat appid"), validators=[Optional(), Length(max=64)])
    events_uri = StringField(_l("Events URI (RFC 8935 push)"), validators=[Length(max=500)])
    event_types = MultiCheckboxField(
        _l("Account events pushed to the events URI"),
        choices=[SelectChoice(event_type) for event_type in ACCOUNT_EVENT_TYPES],
    )
    post_logout_redirect_uris = TextAreaField(
        _l("Post-logout redirect URIs, one per line"), validators=[Optional()]
    )
    backchannel_logout_uri = StringField(
        _l("Back-channel logout URI"), validators=[Length(max=500)]
    )
    token_endpoint_auth_method = SelectField(
        _l("Client authentication (token, revocation, introspection)"),
        choices=[
            SelectChoice("", _l("Default: client_secret_basic, or none for a public client")),
            *(SelectChoice(method) for method in AUTH_METHODS),
        ],
        default="",
    )
    jwks = TextAreaField(
        _l("Public JWKS (private_key_jwt only)"), validators=[Optional(), Length(max=20000)]
    )


class WeChatAppForm(FlaskForm):
    kind = SelectField(
        _l("Kind"),
        choices=[SelectChoice(WeChatAppKind.MINIPROGRAM, _l("Mini-program")),
                 SelectChoice(WeChatAppKind.WEBSITE, _l("Website (QR login)")),
                 SelectChoice(WeChatAppKind.OFFICIAL_ACCOUNT,
                              _l("Official Account (sign-in inside WeChat)"))],
    )
    appid = StringField(
        _l("AppID"),
        validators=[DataRequired(), Length(max=64), Regexp(r"^[A-Za-z0-9_-]+$")],
    )
    name = StringField(_l("Name"), validators=[Length(max=120)])
    secret = PasswordField(_l("AppSecret"), validators=[DataRequired(), Length(max=128)])
