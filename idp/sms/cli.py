"""`idp sms send-test` and `idp fake-sms` (CONTRACT §8)."""

from __future__ import annotations

import secrets
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from idp.sms.errors import SmsError
from idp.sms.purposes import Purpose


@click.group(help="SMS delivery: the configured provider (IDP_SMS_PROVIDER).")
def sms() -> None:
    pass


@sms.command("send-test")
@click.option("--phone", required=True, help="E.164 (or any usual format)")
@click.option(
    "--purpose", default=Purpose.LOGIN.value, type=click.Choice([p.value for p in Purpose]),
    help="which approved template to use",
)
@with_appcontext
def send_test(phone: str, purpose: str) -> None:
    """Sends one real message with a random code (which signs nobody in: it is not stored) and
    prints the provider's answer."""
    from idp.identity.phones import InvalidPhoneNumber, normalize_phone

    try:
        number = normalize_phone(phone)
    except InvalidPhoneNumber:
        click.echo(f"error: not a phone number: {phone!r}", err=True)
        sys.exit(1)
    sender = current_app.extensions["idp_sms"]
    code = f"{secrets.randbelow(10**6):06d}"
    minutes = max(1, int(current_app.config["IDP_SMS_CODE_TTL"]) // 60)
    try:
        delivery = sender.send(number, Purpose(purpose), code, minutes)
    except SmsError as error:
        click.echo(
            f"error: {error.provider} refused: {error.code} ({error.kind.value})"
            f"{': ' + error.provider_message if error.provider_message else ''}",
            err=True,
        )
        sys.exit(1)
    click.echo(
        f"sent: provider={delivery.provider} message_id={delivery.message_id} "
        f"request_id={delivery.request_id}"
    )


@click.command("fake-sms", help="A fake of Alibaba Cloud SMS, Tencent Cloud SMS and Captcha.")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8801, type=int)
def fake_sms(host: str, port: int) -> None:
    from idp.sms.fake.server import run

    run(host, port)
