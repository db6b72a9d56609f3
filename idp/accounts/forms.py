"""Forms of the user-facing pages; Flask-WTF adds the CSRF token to each."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    identifier = StringField("Phone or email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class PhoneForm(FlaskForm):
    phone = StringField("Phone", validators=[DataRequired(), Length(max=32)])
    next = HiddenField()


class CodePasswordForm(FlaskForm):
    phone = HiddenField(validators=[DataRequired(), Length(max=32)])
    code = StringField("SMS code", validators=[DataRequired(), Length(min=6, max=6)])
    password = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=1024)])
    next = HiddenField()
