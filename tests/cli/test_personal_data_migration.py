"""Issue 28 item 3: rows written before encryption are encrypted by `idp data encrypt`, a
resumable batch job run while the IdP serves (killed half-way, resumed: nothing lost, nothing
left plain, sign-in by phone finds every account throughout), and `idp keys rotate-data`
moves everything to a new key version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from idp import create_app
from idp.admin.search import search_accounts
from idp.extensions import db
from idp.field_crypto import BlindIndex, FieldCipher
from idp.identity.accounts import find_account
from idp.identity.audit import Actor
from idp.identity.models import Account, IdentityKind, ProfileClaim
from idp.models_base import utcnow
from idp.operations.personal_data import rows_left, seal_personal_data

ACCOUNTS = 60
BATCH = 10
IDP = str(Path(sys.executable).with_name("idp"))


def phone(number: int) -> str:
    return f"+8613700{number:06d}"


def seed_legacy_rows(count: int) -> list[str]:
    """Accounts as the code before encryption wrote them: plain values, no sealed column."""
    now = utcnow()
    ids = []
    for number in range(count):
        account = Account(created_via="website", created_at=now)
        db.session.add(account)
        db.session.flush()
        ids.append(account.id)
        for kind, value, verified in ((IdentityKind.PHONE, phone(number), True),
                                      (IdentityKind.EMAIL, f"user{number}@example.cn", False),
                                      (IdentityKind.WECHAT_UNIONID, f"union{number:022d}", True)):
            db.session.execute(text(
                "INSERT INTO identity (account_id, kind, namespace, value, verified, created_at)"
                " VALUES (:account, :kind, '', :value, :verified, :now)"
            ), {"account": account.id, "kind": kind, "value": value, "verified": verified,
                "now": now})
        db.session.execute(text(
            "INSERT INTO profile_claim (account_id, name, source, value, updated_at)"
            " VALUES (:account, 'birthdate', 'user', :value, :now)"
        ), {"account": account.id, "value": f"1990-01-{number % 28 + 1:02d}", "now": now})
    db.session.commit()
    return ids


def raw_identities() -> list[Any]:
    return db.session.execute(text(
        "SELECT kind, value, value_sealed FROM identity WHERE kind IN "
        "('phone', 'email', 'wechat_unionid') ORDER BY id"
    )).all()


def everyone_signs_in_by_phone(ids: list[str]) -> None:
    db.session.expire_all()
    for number, account_id in enumerate(ids):
        assert find_account(IdentityKind.PHONE, phone(number)).id == account_id
        assert find_account(IdentityKind.WECHAT_UNIONID, f"union{number:022d}").id == account_id
    db.session.rollback()


def everything_reads_back(ids: list[str]) -> None:
    db.session.expire_all()
    for number, account_id in enumerate(ids):
        values = {i.kind: i.value for i in db.session.get(Account, account_id).identities}
        assert values == {IdentityKind.PHONE: phone(number),
                          IdentityKind.EMAIL: f"user{number}@example.cn",
                          IdentityKind.WECHAT_UNIONID: f"union{number:022d}"}
    claims = db.session.query(ProfileClaim).order_by(ProfileClaim.id).all()
    assert [c.value for c in claims] == [f"1990-01-{n % 28 + 1:02d}" for n in range(len(ids))]


@pytest.fixture
def cli_env(app: Flask, app_config: dict[str, Any]) -> dict[str, str]:
    """The `idp` command in its own process, on this test's database and instance keys."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("IDP_")}
    for name in ("IDP_DATABASE_URL", "IDP_INSTANCE_PATH", "IDP_SECRET_KEY",
                 "IDP_ENCRYPTION_KEY", "IDP_DATA_KEYS", "IDP_BLIND_INDEX_KEYS", "IDP_ISSUER"):
        env[name] = str(app_config[name])
    return env


def run_until_killed(env: dict[str, str], batches: int) -> list[str]:
    """Starts `idp data encrypt` and kills it (SIGKILL: no clean-up) once it has reported
    `batches` committed batches: it is then inside the next one."""
    lines: list[str] = []
    with subprocess.Popen(  # noqa: S603
        [IDP, "data", "encrypt", "--batch-size", str(BATCH)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        while len(lines) < batches:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line)
        process.send_signal(signal.SIGKILL)
        process.wait()
    return lines


def test_a_killed_encryption_job_resumes_and_leaves_nothing_plain__pipl_art_51(
    app: Flask, cli_env: dict[str, str]
) -> None:
    ids = seed_legacy_rows(ACCOUNTS)
    everyone_signs_in_by_phone(ids)  # before: plain rows are found

    lines = run_until_killed(cli_env, batches=3)

    assert all("identity: batch to id" in line for line in lines)
    rows = raw_identities()
    sealed = [row for row in rows if row.value_sealed is not None]
    assert 0 < len(sealed) < len(rows)  # really half-way
    everyone_signs_in_by_phone(ids)  # half-way: encrypted and plain rows are both found
    everything_reads_back(ids)

    resumed = subprocess.run(  # noqa: S603
        [IDP, "data", "encrypt", "--batch-size", str(BATCH)], env=cli_env,
        capture_output=True, text=True, check=True,
    )

    assert "identity: 0 rewritten" not in resumed.stdout
    rows = raw_identities()
    assert all(FieldCipher.is_sealed(row.value_sealed) for row in rows)
    assert all(BlindIndex.is_index(row.value) for row in rows)
    plain = db.session.execute(text("SELECT value FROM profile_claim")).scalars().all()
    assert all(FieldCipher.is_sealed(value) for value in plain)
    assert set(rows_left().values()) == {0}
    everyone_signs_in_by_phone(ids)
    everything_reads_back(ids)


def test_rotate_data_moves_every_row_to_the_new_key_versions(
    app: Flask, app_config: dict[str, Any], make_user: Any
) -> None:
    ids = seed_legacy_rows(12)
    seal_personal_data(batch_size=5)
    holder = make_user(phone="+8613911112222", email="Rotating@Example.cn").id
    db.session.commit()
    db.session.remove()

    old_data, old_index = app_config["IDP_DATA_KEYS"], app_config["IDP_BLIND_INDEX_KEYS"]
    rotated = create_app({**app_config, "IDP_DATA_KEYS": f"2:new-data-key,{old_data}",
                          "IDP_BLIND_INDEX_KEYS": f"2:new-index-key,{old_index}"})
    with rotated.app_context():
        everyone_signs_in_by_phone(ids)  # before the rewrite: found under the old versions
        assert rotated.test_cli_runner().invoke(
            args=["keys", "rotate-data", "--batch-size", "5"]).exit_code == 0
        rows = raw_identities()
        assert all(row.value_sealed.startswith("$a2$") and row.value.startswith("h2.")
                   for row in rows)
        assert set(rows_left().values()) == {0}
        db.session.remove()
        db.engine.dispose()  # its pooled connections closed now, not by the garbage collector

    only_new = create_app({**app_config, "IDP_DATA_KEYS": "2:new-data-key",
                           "IDP_BLIND_INDEX_KEYS": "2:new-index-key"})
    with only_new.app_context():  # the old versions dropped: nothing needs them any more
        everyone_signs_in_by_phone(ids)
        everything_reads_back(ids)
        assert [a.id for a in search_accounts("ROTATING@example.CN").accounts] == [holder]
        status = only_new.test_cli_runner().invoke(args=["data", "status"])
        assert "identity: 0 left" in status.output
        db.session.remove()
        db.engine.dispose()


def test_sm4_is_chosen_per_deployment(app_config: dict[str, Any], app: Flask) -> None:
    national = create_app({**app_config, "IDP_DATA_CIPHER": "sm4-gcm"})
    with national.app_context():
        from idp.accounts.seed import create_password_user

        account = create_password_user("+8613922223333", "a long password 1",
                                       actor=Actor.system("test"))
        db.session.commit()
        stored = db.session.execute(text(
            "SELECT value_sealed FROM identity WHERE kind = 'phone'")).scalar_one()
        assert stored.startswith("$s1$")
        db.session.expire_all()
        assert find_account(IdentityKind.PHONE, "+8613922223333").id == account.id
        db.session.remove()
        db.engine.dispose()
