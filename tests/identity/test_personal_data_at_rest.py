"""Issue 28: with encryption on (the default), a copy of the database holds no phone, email,
unionid, address or birthdate in plain text — a `pg_dump` and the SQLite file are searched for
the seeded values — while every lookup still finds them."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from idp.accounts.models import SmsCode
from idp.admin.search import search_accounts
from idp.extensions import db
from idp.field_crypto import BlindIndex, FieldCipher, personal_data
from idp.identity.accounts import find_account, link_identity, write_claim
from idp.identity.audit import Actor
from idp.identity.claims import user_claims
from idp.identity.links import bind_verified_phone
from idp.identity.models import Account, IdentityKind, MergeRecord
from idp.maintenance.reconciliation import build_report, run_reconciliation
from idp.models_base import utcnow
from tests.identity.conftest import age

ACTOR = Actor.system("test")
PHONE = "+8613912345678"
SHARED_PHONE = "+8613912340000"
EMAIL = "li.si@example.cn"
UNIONID = "o6_bmasdasdsad6_2sgVt7hMZOPfL"
STREET = "88 Jianguo Road"
BIRTHDATE = "1990-05-17"
NAME = "Zhang Sanfeng"
# Every spelling a reader of a dump would search for.
SECRETS = (PHONE, PHONE[3:], EMAIL, UNIONID, STREET, BIRTHDATE)


def seed(make_user: Any, wechat_user: Any) -> Account:
    """Every path that writes these values: a password user, a WeChat user merged into it by
    the same verified phone, claims, an unverified phone shared with a third account (the
    reconciliation report), an SMS code."""
    website = age(make_user(phone=PHONE, email=EMAIL.upper(), name=NAME), 10)
    mini = wechat_user("openid-at-rest", unionid=UNIONID)
    survivor, merged = bind_verified_phone(mini, PHONE, "sms", ACTOR)
    assert merged and survivor.id == website.id
    write_claim(survivor, "address", {"street_address": STREET, "locality": "Beijing"},
                Actor.user(survivor.id))
    write_claim(survivor, "birthdate", BIRTHDATE, Actor.user(survivor.id))
    link_identity(survivor, IdentityKind.PHONE, SHARED_PHONE, ACTOR, verified=False)
    other = make_user()
    link_identity(other, IdentityKind.PHONE, SHARED_PHONE, ACTOR, verified=False)
    now = utcnow()
    db.session.add(SmsCode(phone=PHONE, purpose="login", code_digest="0" * 64, created_at=now,
                           expires_at=now + timedelta(minutes=5)))
    db.session.commit()
    run_reconciliation("cli")
    return survivor


def database_copy(app: Flask, backend: str, tmp_path: Path) -> bytes:
    url = db.engine.url
    if backend == "sqlite":
        db.session.close()
        db.engine.dispose()  # the file (and any write-ahead log) is complete on disk
        path = Path(str(url.database))
        extra = Path(f"{path}-wal")
        return path.read_bytes() + (extra.read_bytes() if extra.exists() else b"")
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump (the PostgreSQL client) is needed"
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    dump = tmp_path / "dump.sql"
    subprocess.run([pg_dump, "--no-owner", "--file", str(dump), libpq], check=True)  # noqa: S603
    return dump.read_bytes()


def test_a_dump_holds_no_personal_data_in_plain_text__pipl_art_51(
    app: Flask, backend: str, make_user: Any, wechat_user: Any, tmp_path: Path
) -> None:
    seed(make_user, wechat_user)

    copy = database_copy(app, backend, tmp_path)

    found = [value for value in SECRETS if value.encode() in copy]
    assert found == []
    assert NAME.encode() in copy  # the search reads the copy: names stay plain, on purpose
    assert re.search(rb"\$a1\$[A-Za-z0-9_-]{40,}", copy)  # ... and the rest is sealed


def test_everything_is_still_found_and_served_in_plain(
    app: Flask, make_user: Any, wechat_user: Any
) -> None:
    survivor = seed(make_user, wechat_user)
    db.session.expire_all()

    assert find_account(IdentityKind.PHONE, PHONE).id == survivor.id
    assert find_account(IdentityKind.WECHAT_UNIONID, UNIONID).id == survivor.id
    for spelling in ("139 1234 5678", "0086 139-1234-5678", EMAIL.upper(), UNIONID):
        assert [a.id for a in search_accounts(spelling).accounts] == [survivor.id], spelling
    claims = user_claims(db.session.get(Account, survivor.id), "openid profile phone email address")
    assert (claims["phone_number"], claims["email"]) == (PHONE, EMAIL)
    assert (claims["birthdate"], claims["address"]["street_address"]) == (BIRTHDATE, STREET)
    [shared] = build_report().shared_unverified_phones
    assert shared.value == SHARED_PHONE
    assert db.session.query(MergeRecord).one().snapshot["version"] == 1  # reads back whole


def test_identity_rows_hold_the_blind_index_and_the_ciphertext(
    app: Flask, make_user: Any
) -> None:
    account = make_user(phone=PHONE)
    [row] = db.session.execute(
        text("SELECT value, value_sealed FROM identity WHERE account_id = :id AND kind = 'phone'"),
        {"id": account.id},
    ).all()
    assert row.value == personal_data().index.key(IdentityKind.PHONE, PHONE)
    assert FieldCipher.is_sealed(row.value_sealed) and row.value_sealed.startswith("$a1$")


def test_the_ciphertext_names_its_algorithm_and_key_version() -> None:
    old = FieldCipher("1:first")
    both = FieldCipher("2:second,1:first", "sm4-gcm")
    sealed = old.encrypt(PHONE, "identity.value")
    assert sealed.startswith("$a1$") and both.decrypt(sealed, "identity.value") == PHONE
    national = both.encrypt(PHONE, "identity.value")
    assert national.startswith("$s2$") and both.decrypt(national, "identity.value") == PHONE
    assert both.encrypt(PHONE, "identity.value") != national  # a fresh nonce each time


def test_a_ciphertext_moved_to_another_column_or_altered_does_not_decrypt() -> None:
    from idp.crypto import DecryptionError

    cipher = FieldCipher("1:first")
    sealed = cipher.encrypt(BIRTHDATE, "profile_claim.value")
    with pytest.raises(DecryptionError):
        cipher.decrypt(sealed, "identity.value")
    altered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(DecryptionError):
        cipher.decrypt(altered, "profile_claim.value")
    with pytest.raises(DecryptionError):
        FieldCipher("2:other").decrypt(sealed, "profile_claim.value")


def test_the_blind_index_is_keyed_versioned_and_spelling_blind_for_emails() -> None:
    index = BlindIndex("2:new,1:old")
    assert index.key("email", "Li.Si@Example.CN ") == index.key("email", EMAIL)
    assert index.key("email", EMAIL).startswith("h2.")
    assert index.every_key("email", EMAIL)[1] == BlindIndex("1:old").key("email", EMAIL)
    assert BlindIndex("1:other").key("email", EMAIL) != BlindIndex("1:old").key("email", EMAIL)
    assert index.key("phone", PHONE) != index.key("wechat_unionid", PHONE)  # kinds separated


@pytest.mark.parametrize("setting", ["", "secret", "0:secret", "1:a,1:b", "x:secret"])
def test_malformed_key_settings_are_refused_with_the_setting_named(setting: str) -> None:
    from idp.errors import ConfigError

    with pytest.raises(ConfigError, match="IDP_DATA_KEYS"):
        FieldCipher(setting)
