"""Column types that keep personal data encrypted in the database and plain in Python
(`idp.field_crypto`), so the code that reads `identity.value` or `claim.value` is unchanged.

A value that is not sealed reads back as it is: rows written before encryption stay readable
until `idp data encrypt` has rewritten them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from idp.field_crypto import FieldCipher, personal_data


class Personal(str):
    """A plain value that `MaybeSealedText` encrypts on its way to the database."""

    __slots__ = ()


class SealedText(TypeDecorator[str]):
    """Always encrypted; `purpose` names the column (the ciphertext's associated data)."""

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str):
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return personal_data().cipher.encrypt(str(value), self.purpose)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not FieldCipher.is_sealed(value):
            return value
        return personal_data().cipher.decrypt(value, self.purpose)


class MaybeSealedText(SealedText):
    """Encrypted when the model marks the value `Personal` (a column shared by searchable and
    personal rows: profile claims hold names and birthdates)."""

    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if isinstance(value, Personal):
            return super().process_bind_param(value, dialect)
        return value

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not FieldCipher.is_sealed(value):
            return value
        return Personal(personal_data().cipher.decrypt(value, self.purpose))


class SealedJSON(TypeDecorator[Any]):
    """JSON whose top-level `keys` (all of them when None) are stored encrypted, each as a
    sealed string of its JSON value; other keys stay readable to a database administrator."""

    impl = JSON
    cache_ok = True

    def __init__(self, purpose: str, keys: Iterable[str] | None = None):
        super().__init__()
        self.purpose = purpose
        self.keys = frozenset(keys) if keys is not None else None

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        cipher = personal_data().cipher
        if self.keys is None:
            return cipher.encrypt(json.dumps(value), self.purpose)
        if not isinstance(value, dict):
            return value
        return {key: (cipher.encrypt(json.dumps(item), self.purpose)
                      if key in self.keys and item is not None else item)
                for key, item in value.items()}

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and FieldCipher.is_sealed(value):
            return json.loads(personal_data().cipher.decrypt(value, self.purpose))
        if isinstance(value, dict) and self.keys is not None:
            return {key: self._open(item) if key in self.keys else item
                    for key, item in value.items()}
        return value

    def _open(self, item: Any) -> Any:
        if isinstance(item, str) and FieldCipher.is_sealed(item):
            return json.loads(personal_data().cipher.decrypt(item, self.purpose))
        return item


class BlindIndexed(TypeDecorator[str]):
    """Only the blind index is stored (a value never read back, looked up by equality: the
    phone an SMS code was sent to); comparisons bind through it, so `column == phone` works."""

    impl = String
    cache_ok = True

    def __init__(self, kind: str, length: int):
        super().__init__(length)
        self.kind = kind

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return personal_data().index.key(self.kind, value)
