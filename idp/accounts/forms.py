"""Forms of the user-facing pages; Flask-WTF adds the CSRF token to each."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    identifier = StringField("Phone or email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class PhoneForm(FlaskForm):
    phone = StringField("Phone", validators=[DataRequired(), Length(max=32)])
    next = HiddenField()
    # Filled by the captcha widget when the page asked for it (idp/accounts/sms_request.py).
    captcha_ticket = HiddenField(validators=[Length(max=2048)])
    captcha_randstr = HiddenField(validators=[Length(max=128)])
    # "code": a resend from the code page, whose refusals are shown on that page.
    origin = HiddenField(validators=[Length(max=8)])


class CodePasswordForm(FlaskForm):
    phone = HiddenField(validators=[DataRequired(), Length(max=32)])
    code = StringField("SMS code", validators=[DataRequired(), Length(min=6, max=6)])
    password = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=1024)])
    accept_terms = BooleanField()
    next = HiddenField()


class SmsCodeForm(FlaskForm):
    """Step two of the one-step SMS sign-in: the code, and the terms (always asked, so the
    page says nothing about whether the number has an account)."""

    phone = HiddenField(validators=[DataRequired(), Length(max=32)])
    code = StringField("SMS code", validators=[DataRequired(), Length(min=6, max=6)])
    accept_terms = BooleanField()
    next = HiddenField()
