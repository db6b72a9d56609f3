"""The `idp` command line (CONTRACT §3). Secrets come from stdin, never from argv."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext
from sqlalchemy import select

from idp.extensions import db


def _create_app() -> Flask:
    from idp import create_app
    from idp.errors import ConfigError

    try:
        return create_app()
    except ConfigError as error:  # a wrong setting: one line naming it, not a traceback
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


class _AppCommands(AppGroup):
    """`app.cli`: the app's commands, and Flask-Migrate's `db` group, imported (with Alembic,
    ~0.15 s) only when it is run or listed: `create_app` no longer sets Flask-Migrate up
    (`idp.extensions.migrations_on_first_use`)."""

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "db" and name not in self.commands:
            from flask_migrate.cli import db as migrations

            return migrations
        return super().get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "db"})


main = FlaskGroup(create_app=_create_app, add_version_option=False, load_dotenv=False,
                  help="The identity provider's command line.")


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def read_secret(label: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        fail(f"no {label} on stdin")
    return value


def register_commands(app: Flask) -> None:
    from idp.sms.cli import fake_sms, sms
    from idp.staff.cli import admins, audit

    commands = _AppCommands(app.cli.name)
    commands.commands.update(app.cli.commands)  # a blueprint's, if any
    app.cli = commands
    for command in (
        users, clients, keys, data, wechat_apps, serve, dev, fake_wechat, identity, worker, backup,
        restore, maintenance, sms, fake_sms, tokens, admins, audit,
    ):  # fmt: skip
        app.cli.add_command(command)


# --- users -----------------------------------------------------------------------------------


@click.group(help="Accounts.")
def users() -> None:
    pass


@users.command("create")
@click.option("--phone", required=True, help="E.164 (or any usual format)")
@click.option("--email")
@click.option("--name")
@click.option("--admin", is_flag=True)
@click.option("--password-stdin", is_flag=True, required=True)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def users_create(
    phone: str, email: str | None, name: str | None, admin: bool, password_stdin: bool,
    as_json: bool,
) -> None:
    from idp.accounts.passwords import WeakPassword
    from idp.accounts.seed import create_password_user
    from idp.identity.accounts import IdentityTaken
    from idp.identity.phones import InvalidPhoneNumber

    password = read_secret("password")
    try:
        account = create_password_user(phone, password, email=email, name=name, admin=admin)
    except (InvalidPhoneNumber, WeakPassword, IdentityTaken) as error:
        fail(str(error))
        return
    click.echo(json.dumps({"sub": account.id}) if as_json else account.id)


# --- clients ---------------------------------------------------------------------------------


@click.group(help="OAuth clients (relying parties).")
def clients() -> None:
    pass


@clients.command("create")
@click.option("--name", required=True)
@click.option("--public", is_flag=True, help="no secret (mini-programs, single-page apps)")
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--grant-type", "grant_types", multiple=True)
@click.option("--scope", default=None)
@click.option("--wechat-appid")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True)
@click.option("--backchannel-logout-uri")
@click.option("--events-uri")
@click.option("--event-type", "event_types", multiple=True,
              help="an account event type to push to --events-uri (default: merges and undos)")
@click.option("--first-party", is_flag=True, help="skip the consent screen")
@click.option("--require-mfa", is_flag=True, help="every sign-in needs a second factor")
@click.option("--id-token-alg", type=click.Choice(["RS256", "ES256"]), default="RS256")
@click.option("--jwks-stdin", is_flag=True, help="read a public JWKS: private_key_jwt")
@click.option(
    "--token-endpoint-auth-method",
    help="client_secret_basic (default), client_secret_post, private_key_jwt (with --jwks-stdin)"
    " or none (= --public); the token, revocation and introspection endpoints accept only it",
)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def clients_create(as_json: bool, jwks_stdin: bool, **options: Any) -> None:
    from idp.oidc.clients import ClientSpecError, create_client

    if jwks_stdin:
        try:
            options["jwks"] = json.loads(sys.stdin.read())
        except ValueError:
            fail("the JWKS on stdin is not JSON")
    try:
        client, secret = create_client(**options)
    except ClientSpecError as error:
        fail(str(error))
        return
    result = {"client_id": client.client_id, "client_secret": secret}
    click.echo(json.dumps(result) if as_json else f"{client.client_id} {secret or ''}".strip())


# --- keys ------------------------------------------------------------------------------------


@click.group(help="Signing keys and the encryption of secrets at rest.")
def keys() -> None:
    pass


@keys.command("rotate")
@with_appcontext
def keys_rotate() -> None:
    from idp.oidc.keys import rotate_keys, signs_from

    keyring = current_app.extensions["idp_keyring"]
    for row in rotate_keys(current_app.extensions["idp_secret_box"]):
        # Published by every process within the key cache window; signs once every JWKS copy
        # without it has expired (docs/DEPLOYMENT.md, "Key rotation").
        when = signs_from(row, keyring.sign_after)
        click.echo(f"{row.alg} {row.kid} published; it signs from {when:%Y-%m-%d %H:%M:%S} UTC")
    keyring.invalidate()


@keys.command("list")
@with_appcontext
def keys_list() -> None:
    from idp.models_base import utcnow
    from idp.oidc.keys import signing_rows, signs_from
    from idp.oidc.models import SigningKey

    rows = db.session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())).all()
    sign_after = current_app.extensions["idp_keyring"].sign_after
    signing = {row.kid for row in signing_rows(rows, sign_after).values()}
    for row in rows:
        state = "retired" if row.retired_at else "current" if row.kid in signing else "published"
        if state == "published" and signs_from(row, sign_after) > utcnow():
            state += f", signs from {signs_from(row, sign_after):%Y-%m-%d %H:%M:%S} UTC"
        click.echo(f"{row.kid}  {row.alg}  {row.created_at:%Y-%m-%d %H:%M}  {state}")


@keys.command("rotate-encryption")
@with_appcontext
def keys_rotate_encryption() -> None:
    """Re-encrypt secrets at rest with the first key of IDP_ENCRYPTION_KEY."""
    from idp.operations.encryption import rotate_encryption

    for table, count in rotate_encryption(current_app.extensions["idp_secret_box"]).items():
        click.echo(f"{table}: {count}")


@keys.command("rotate-data")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True)
@with_appcontext
def keys_rotate_data(batch_size: int) -> None:
    """Re-encrypt and re-index personal data under the first keys of IDP_DATA_KEYS and
    IDP_BLIND_INDEX_KEYS, in batches, while the IdP serves; safe to stop and run again."""
    _seal_personal_data(batch_size)


@keys.command("retire")
@click.argument("kid")
@with_appcontext
def keys_retire(kid: str) -> None:
    from idp.oidc.keys import SigningKeyUnavailable, retire_key

    try:
        retire_key(kid, current_app.extensions["idp_keyring"].sign_after)
    except SigningKeyUnavailable as error:
        fail(str(error))
    click.echo(f"{kid} retired: removed from the JWKS")


# --- tokens ----------------------------------------------------------------------------------


@click.group(help="Personal data at rest: phones, emails, unionids, addresses, birthdates.")
def data() -> None:
    pass


@data.command("encrypt")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True)
@with_appcontext
def data_encrypt(batch_size: int) -> None:
    """Encrypt and index the rows written before encryption, in batches, while the IdP serves;
    safe to stop and run again (it carries on where it stopped)."""
    _seal_personal_data(batch_size)


@data.command("status")
@with_appcontext
def data_status() -> None:
    """Rows still plain or under an old key version (0 everywhere: old versions may go)."""
    from idp.operations.personal_data import rows_left

    for table, count in rows_left().items():
        click.echo(f"{table}: {count} left")


def _seal_personal_data(batch_size: int) -> None:
    from idp.operations.personal_data import seal_personal_data

    def progress(table: str, last_id: int, changed: int) -> None:
        click.echo(f"{table}: batch to id {last_id} committed, {changed} rewritten")

    for table, count in seal_personal_data(batch_size, progress).items():
        click.echo(f"{table}: {count} rewritten in all")


@click.group(help="Issued tokens.")
def tokens() -> None:
    pass


@tokens.command("revoke-all")
@click.option(
    "--before",
    "before",
    metavar="TIME",
    help="ISO 8601 time (e.g. 2026-11-30T08:00:00Z; no zone means UTC). Default: now.",
)
@with_appcontext
def tokens_revoke_all(before: str | None) -> None:
    """Revoke every refresh token issued before TIME and reject every access token issued at
    or before it. Run it after restoring a backup (docs/DEPLOYMENT.md, "After a restore")."""
    from datetime import UTC, datetime

    from idp.oidc.revocation import revoke_all_tokens

    cutoff = None
    if before:
        try:
            cutoff = datetime.fromisoformat(before.replace("Z", "+00:00"))
        except ValueError:
            fail(f"--before: not an ISO 8601 time: {before!r}")
        assert cutoff is not None
        if cutoff.tzinfo is None:
            cutoff = cutoff.replace(tzinfo=UTC)
    result = revoke_all_tokens("cli", cutoff)
    click.echo(
        f"revoked {result.refresh_tokens} refresh tokens; access tokens issued at or before "
        f"{result.not_before.isoformat(timespec='seconds')} are rejected"
    )


# --- WeChat apps -----------------------------------------------------------------------------


@click.group(
    "wechat-apps", help="Upstream WeChat apps (mini-programs, website apps, Official Accounts)."
)
def wechat_apps() -> None:
    pass


@wechat_apps.command("create")
@click.option(
    "--kind", type=click.Choice(["miniprogram", "website", "officialaccount"]), required=True
)
@click.option("--appid", required=True)
@click.option("--name", default="")
@click.option("--secret-stdin", is_flag=True, required=True)
@with_appcontext
def wechat_apps_create(kind: str, appid: str, name: str, secret_stdin: bool) -> None:
    from idp.wechat.apps import WeChatAppExists, create_wechat_app

    secret = read_secret("secret")
    try:
        create_wechat_app(kind, appid, secret, name=name)
    except WeChatAppExists as error:
        fail(str(error))
    click.echo(f"{kind} app {appid} saved")


# --- identity --------------------------------------------------------------------------------


@click.group(help="The unified identity: reconciliation of what the rules did not merge.")
def identity() -> None:
    pass


@identity.command("report")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@with_appcontext
def identity_report(as_json: bool) -> None:
    """Accounts sharing an unverified phone or a verified email, and accounts with no way left
    to log in: suggestions for an admin, nothing is changed."""
    import sys

    from idp.maintenance.reconciliation import run_reconciliation, write_json, write_table

    run = run_reconciliation(trigger="cli")  # stored: the admin's suggestions page shows it too
    (write_json if as_json else write_table)(run, sys.stdout)


@click.group(help="Scheduled maintenance: retention purges, reconciliation, dashboard rollups.")
def maintenance() -> None:
    pass


@maintenance.command("run")
@click.argument("job", type=click.Choice(
    ["retention", "reconciliation", "usage_rollup", "account_deletions"]))
@with_appcontext
def maintenance_run(job: str) -> None:
    """Runs one scheduled job now, whatever its schedule, and prints its outcome."""
    from idp.maintenance.schedule import run_job

    click.echo(run_job(current_app._get_current_object(), job))  # type: ignore[attr-defined]


# --- event delivery --------------------------------------------------------------------------


@click.command(help="Deliver queued security events to relying parties (runs until stopped).")
@click.option("--once", is_flag=True, help="one delivery round, then exit")
@click.option("--interval", default=2.0, type=float, help="seconds between rounds")
@with_appcontext
def worker(once: bool, interval: float) -> None:

    from idp.maintenance.schedule import run_due_jobs
    from idp.maintenance.worker import run_once, serve_until_signalled

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        click.echo(f"{run_once(app)} deliveries attempted")
        click.echo(f"scheduled jobs run: {', '.join(run_due_jobs(app)) or 'none due'}")
        return
    serve_until_signalled(app, interval)


# --- serving ---------------------------------------------------------------------------------


def _schema_is_current() -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from flask_migrate import Migrate  # noqa: F401

    config = current_app.extensions["migrate"].migrate.get_config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current == heads


@click.command(help="Serve the IdP (granian; IDP_SERVER=gunicorn for gunicorn). kill -HUP reloads.")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--workers", default=None, type=int, help="default: one per CPU, at most 8")
@with_appcontext
def serve(host: str, port: int, workers: int | None) -> None:
    from idp.operations.serving import (
        default_worker_count,
        prepare_metrics_directory,
        server_argv,
    )

    try:
        current = _schema_is_current()
    except Exception as error:  # noqa: BLE001 - one line, not a traceback
        fail(f"cannot reach the database: {type(error).__name__}")
        return
    if not current:
        fail("the database schema is not up to date: run `idp db upgrade` first")
    _check_throttle_store()
    try:
        argv = server_argv(host, port, workers or default_worker_count())
    except ValueError as error:
        fail(str(error))
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        directory = prepare_metrics_directory(current_app.instance_path)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        os.environ["IDP_METRICS_DIR_OWNED"] = str(directory)  # removed when the server exits
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process with the server


def _check_throttle_store() -> None:
    """Throttles must count across workers (issue 10, item 6): Redis, or the SQLite file every
    worker of this machine shares. Refuse when that file cannot be used; warn when the database
    suggests more than one machine, where only Redis counts for all."""
    from idp.security.throttle import shared_storage

    if current_app.config.get("IDP_REDIS_URL"):
        return
    try:
        store = shared_storage(current_app._get_current_object())  # type: ignore[attr-defined]
        store.check()
    except Exception as error:  # noqa: BLE001 - one line, not a traceback
        fail(f"the throttle store under {current_app.instance_path} cannot be used "
             f"({type(error).__name__}); make IDP_INSTANCE_PATH writable or set IDP_REDIS_URL")
    if not str(current_app.config["IDP_DATABASE_URL"]).startswith("sqlite"):
        click.echo(
            "warning: IDP_REDIS_URL is not set: password and SMS throttles are shared by the "
            "workers of this machine only; if several machines serve this IdP, set IDP_REDIS_URL",
            err=True,
        )


# --- backups ---------------------------------------------------------------------------------


@click.command(help="Copy the embedded SQLite database to PATH, consistently, while serving.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup(path: Path) -> None:
    from idp.operations.backup import BackupError
    from idp.operations.backup import backup as backup_database

    try:
        summary = backup_database(current_app.config["IDP_DATABASE_URL"], path)
    except BackupError as error:
        fail(str(error))
        return
    click.echo(f"backed up {summary}")
    click.echo("keep IDP_ENCRYPTION_KEY apart from it: the backup's secrets need it", err=True)


@click.command(help="Replace the embedded SQLite database with the backup at PATH.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace a database that already holds data")
@with_appcontext
def restore(path: Path, force: bool) -> None:
    from idp.operations.backup import BackupError
    from idp.operations.backup import restore as restore_database

    try:
        summary = restore_database(
            path,
            current_app.config["IDP_DATABASE_URL"],
            current_app.extensions["idp_secret_box"],
            force=force,
        )
    except BackupError as error:
        fail(str(error))
        return
    click.echo(f"restored {summary}; run `idp db upgrade` if this release is newer")


@click.command(help="The embedded demo: migrate, seed, fake WeChat, demo sites, serve on :5000.")
@click.option("--port", default=5000, type=int)
def dev(port: int) -> None:
    # No app context: run_demo builds the app itself, after pointing it at the fake WeChat.
    from idp.demo.run import DemoError, run_demo

    try:
        run_demo(port=port)
    except DemoError as error:
        fail(str(error))


# A command of `main` itself, so that `idp dev` does not build a throwaway app first.
main.add_command(dev)


@click.command("fake-wechat", help="A fake of WeChat's server APIs, for tests and demos.")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5001, type=int)
def fake_wechat(host: str, port: int) -> None:
    from idp.wechat.fake.server import run

    run(host, port)
