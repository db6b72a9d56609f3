"""`idp keys rotate-encryption`: re-encrypt every secret at rest under the current key.

Put the new key first in `IDP_ENCRYPTION_KEY` (`new,old`), run the command, then drop the old key.
Each encrypted column is listed here with the context its ciphertext is bound to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from idp.crypto import SecretBox
from idp.extensions import db, rows_matched
from idp.identity.models import Account
from idp.oidc.models import SigningKey
from idp.wechat.models import WeChatAccessToken, WeChatApp, WeChatSessionKey


@dataclass(frozen=True)
class EncryptedColumn:
    model: Any
    attribute: str
    context: Callable[[Any], str]


ENCRYPTED_COLUMNS = (
    EncryptedColumn(SigningKey, "private_jwk_encrypted", lambda row: row.kid),
    EncryptedColumn(WeChatApp, "secret_encrypted", lambda row: f"wechat-app:{row.appid}"),
    EncryptedColumn(
        WeChatSessionKey,
        "session_key_encrypted",
        lambda row: f"wechat-session-key:{row.appid}:{row.openid}",
    ),
    EncryptedColumn(Account, "totp_secret_encrypted", lambda row: f"admin-totp:{row.id}"),
)


def rotate_encryption(box: SecretBox) -> dict[str, int]:
    """Re-encrypts what another key made; one transaction, so a failure changes nothing."""
    counts: dict[str, int] = {}
    for column in ENCRYPTED_COLUMNS:
        attribute = getattr(column.model, column.attribute)
        rows = db.session.scalars(select(column.model).where(attribute.is_not(None))).all()
        changed = 0
        for row in rows:
            token = getattr(row, column.attribute)
            if box.needs_reencryption(token):
                setattr(row, column.attribute, box.reencrypt(token, column.context(row)))
                changed += 1
        counts[column.model.__tablename__] = changed
    # A cache: dropping it is simpler and safer than re-encrypting; it refills on next use.
    counts["wechat_access_token (dropped)"] = rows_matched(delete(WeChatAccessToken))
    db.session.commit()
    return counts
