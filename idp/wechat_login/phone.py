"""Phone binding from the mini-program (CONTRACT §6): WeChat proves the number, the identity
engine links it as verified, merging with the account that already holds it."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Any

from idp.identity.accounts import identities_of, resolve_account
from idp.identity.audit import Actor
from idp.identity.links import bind_verified_phone
from idp.identity.models import Account, IdentityKind
from idp.identity.phones import InvalidPhoneNumber, normalize_phone
from idp.identity.rules import ProofMethod
from idp.wechat.crypto import decrypt_encrypted_data
from idp.wechat.errors import DecryptionFailed
from idp.wechat.models import WeChatAppKind
from idp.wechat_login.session_keys import session_key_of
from idp.wechat_login.upstream import client_for, configured_app


class NoWeChatSession(Exception):
    """No session_key is stored for this user of this app: the mini-program must log in again."""


@dataclass(frozen=True)
class PhoneBinding:
    account: Account  # the account the caller is now (the survivor, after a merge)
    phone_number: str  # E.164
    merged: bool


def bind_phone_with_code(account: Account, appid: str, code: str) -> PhoneBinding:
    """`getPhoneNumber` code → getuserphonenumber (with the cached app access token)."""
    app = configured_app(appid, WeChatAppKind.MINIPROGRAM)
    with closing(client_for(app)) as wechat:
        phone = wechat.get_phone_number(code)  # checks watermark.appid itself
    return _bind(account, phone.phone_number_e164)


def bind_phone_with_encrypted_data(
    account: Account, appid: str, encrypted_data: str, iv: str
) -> PhoneBinding:
    """The legacy form: AES-128-CBC under the session_key of the caller's latest login."""
    session_key = _latest_session_key(account, appid)
    data = decrypt_encrypted_data(session_key, encrypted_data, iv, expected_appid=appid)
    return _bind(account, _phone_from_decrypted(data))


def _bind(account: Account, phone_e164: str) -> PhoneBinding:
    survivor, merged = bind_verified_phone(
        account, phone_e164, ProofMethod.WECHAT_PHONE, Actor.user(account.id)
    )
    # A concurrent binding of the same phone may have merged the survivor away just after ours
    # committed: follow the alias so the fresh tokens belong to whoever holds the phone now.
    current = resolve_account(survivor.id) or survivor
    return PhoneBinding(current, phone_e164, merged or current.id != survivor.id)


def _latest_session_key(account: Account, appid: str) -> str:
    for identity in identities_of(account, IdentityKind.WECHAT_OPENID):
        if identity.namespace == appid:
            session_key = session_key_of(appid, identity.value)
            if session_key is not None:
                return session_key
    raise NoWeChatSession()


def _phone_from_decrypted(data: dict[str, Any]) -> str:
    country_code = str(data.get("countryCode") or "").lstrip("+")
    pure = data.get("purePhoneNumber")
    if not country_code.isdigit() or not isinstance(pure, str) or not pure:
        raise DecryptionFailed("the decrypted data holds no phone number")
    try:
        return normalize_phone(f"+{country_code}{pure}")
    except InvalidPhoneNumber:
        raise DecryptionFailed("the decrypted phone number is not valid") from None
