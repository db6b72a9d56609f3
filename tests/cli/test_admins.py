"""`idp admins grant|revoke|list` (issue 27 item 1)."""

import json
from typing import Any

from idp.staff.cli import admins
from idp.staff.roles import roles_of


def run(app: Any, args: list[str]) -> Any:
    return app.test_cli_runner().invoke(admins, args)


def test_grant_list_and_revoke_by_phone_or_sub(app: Any, make_user: Any) -> None:
    first = make_user(phone="+8613900000201", admin=True)
    helper = make_user(phone="+8613900000202")
    granted = run(app, ["grant", "139 0000 0202", "support", "--reason", "help desk"])
    assert granted.exit_code == 0, granted.output
    assert roles_of(helper.id) == {"support"}
    listed = json.loads(run(app, ["list", "--json"]).output)
    assert {"sub": first.id, "roles": ["security"]} in listed
    assert {"sub": helper.id, "roles": ["support"]} in listed
    revoked = run(app, ["revoke", helper.id, "support"])
    assert revoked.exit_code == 0, revoked.output
    assert roles_of(helper.id) == frozenset()


def test_strict_separation_fails_with_one_line(app: Any, make_user: Any) -> None:
    app.config["IDP_ADMIN_SEPARATION"] = "strict"
    first = make_user(phone="+8613900000203", admin=True)
    result = run(app, ["grant", first.id, "auditor"])
    assert result.exit_code == 1
    assert "strict" in result.output and roles_of(first.id) == {"security"}


def test_an_unknown_account_fails(app: Any) -> None:
    result = run(app, ["grant", "+8613900000299", "support"])
    assert result.exit_code == 1 and "no account" in result.output
