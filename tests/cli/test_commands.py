"""The `idp` command line (CONTRACT §3)."""

import json
from typing import Any

from idp.cli import clients, keys, serve, users, wechat_apps


def run(app: Any, command: Any, args: list[str], stdin: str | None = None) -> Any:
    return app.test_cli_runner().invoke(command, args, input=stdin)


def test_users_create_prints_the_sub(app: Any) -> None:
    result = run(
        app,
        users,
        [
            "create",
            "--phone",
            "138 0013 8000",
            "--name",
            "Ann",
            "--admin",
            "--password-stdin",
            "--json",
        ],
        stdin="long enough pw\n",
    )
    assert result.exit_code == 0, result.output
    sub = json.loads(result.output)["sub"]
    from idp.extensions import db
    from idp.identity.models import Account

    assert db.session.get(Account, sub).is_admin


def test_users_create_refuses_a_taken_phone(app: Any, user: Any) -> None:
    result = run(
        app,
        users,
        ["create", "--phone", "+8613800138000", "--password-stdin"],
        stdin="long enough pw\n",
    )
    assert result.exit_code != 0
    assert "error:" in result.output


def test_users_create_refuses_a_bad_phone(app: Any) -> None:
    result = run(app, users, ["create", "--phone", "12", "--password-stdin"], stdin="long enough\n")
    assert result.exit_code != 0


def test_clients_create_json(app: Any) -> None:
    result = run(
        app,
        clients,
        ["create", "--name", "Site", "--redirect-uri", "https://rp.example/cb", "--json"],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["client_id"] and body["client_secret"]


def test_clients_create_public_has_no_secret(app: Any) -> None:
    result = run(
        app,
        clients,
        [
            "create",
            "--name",
            "Mini",
            "--public",
            "--wechat-appid",
            "wx123",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--grant-type",
            "refresh_token",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["client_secret"] is None


def test_clients_create_refuses_http_redirects_off_loopback(app: Any) -> None:
    result = run(
        app, clients, ["create", "--name", "S", "--redirect-uri", "http://rp.example/cb", "--json"]
    )
    assert result.exit_code != 0


def test_keys_rotate_and_list(app: Any, client: Any) -> None:
    client.get("/oauth/jwks")
    before = run(app, keys, ["list"]).output
    result = run(app, keys, ["rotate"])
    assert result.exit_code == 0
    listing = run(app, keys, ["list"]).output
    assert listing.count("current") == 2 and listing.count("published") == 2
    assert len(listing.splitlines()) == len(before.splitlines()) + 2


def test_wechat_app_secret_is_read_from_stdin_and_never_printed(app: Any) -> None:
    result = run(
        app,
        wechat_apps,
        ["create", "--kind", "miniprogram", "--appid", "wxabc", "--secret-stdin"],
        stdin="s3cr3t-value-9876\n",
    )
    assert result.exit_code == 0, result.output
    assert "s3cr3t" not in result.output
    from idp.extensions import db
    from idp.wechat.models import WeChatApp

    row = db.session.get(WeChatApp, "wxabc")
    assert "s3cr3t" not in row.secret_encrypted and row.secret_hint == "9876"


def test_serve_refuses_an_unmigrated_database(app: Any) -> None:
    result = run(app, serve, ["--port", "5999"])
    assert result.exit_code != 0
    assert "idp db upgrade" in result.output


def test_wechat_apps_create_official_account(app: Any) -> None:
    result = run(
        app,
        wechat_apps,
        ["create", "--kind", "officialaccount", "--appid", "wxoa", "--secret-stdin"],
        stdin="oa-secret-value-1234\n",
    )
    assert result.exit_code == 0, result.output
    from idp.extensions import db
    from idp.wechat.models import WeChatApp

    row = db.session.get(WeChatApp, "wxoa")
    assert row is not None and row.kind == "officialaccount"
