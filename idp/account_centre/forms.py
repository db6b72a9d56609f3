"""Forms of the account centre; Flask-WTF adds and checks the CSRF token of each."""

from __future__ import annotations

from flask import request
from flask_wtf import FlaskForm as BaseForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional


class FlaskForm(BaseForm):
    """Several forms share a page: the button's `action` value says which one was sent."""

    def submit_ok(self, action: str) -> bool:
        return (
            request.method == "POST"
            and request.form.get("action") == action
            and self.validate_on_submit()
        )


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class PasswordReauthForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class CodeForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired(), Length(min=6, max=32)])
    next = HiddenField()


class NewPhoneForm(FlaskForm):
    phone = StringField("New phone number", validators=[DataRequired(), Length(max=32)])


class NewPasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[Optional(), Length(max=1024)])
    password = PasswordField("New password", validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField("Repeat the new password", validators=[DataRequired(),
                                                                   Length(max=1024)])


class DeletionForm(FlaskForm):
    confirm = StringField("Type DELETE to confirm", validators=[DataRequired(), Length(max=16)])
