"""`idp clients create --require-mfa`: every sign-in to that client needs a second factor."""

import json
from typing import Any

from idp.cli import clients
from idp.extensions import db
from idp.oidc.models import Client


def test_clients_create_require_mfa(app: Any) -> None:
    result = app.test_cli_runner().invoke(clients, [
        "create", "--name", "Bank", "--redirect-uri", "https://bank.example/cb",
        "--require-mfa", "--json"])
    assert result.exit_code == 0, result.output
    client = db.session.get(Client, json.loads(result.output)["client_id"])
    assert client is not None and client.require_mfa is True
