"""The choice a new WeChat visitor makes on the website; Flask-WTF adds the CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class CreateAccountForm(FlaskForm):
    """Nothing to fill in: the form exists for its CSRF token."""


class LinkAccountForm(FlaskForm):
    identifier = StringField("Phone or email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
