"""Jinja templates compiled once per test process instead of once per app.

Every `app` fixture builds an app, and each app's Jinja environment compiled again every
template a test rendered (lexing, parsing, generating and compiling Python): the largest cost of
a page-rendering test after the database. Jinja's bytecode cache exists for this; here it is a
dict shared by every app of the process, keyed by the template's name and file and checked
against its source. All apps are built by `create_app` with the same Jinja settings and
extensions, as a bytecode cache assumes. Tests only: production builds one app per process."""

from __future__ import annotations

from typing import Any

from flask import Flask
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket


class SharedTemplates(BytecodeCache):
    def __init__(self) -> None:
        self._compiled: dict[str, tuple[str, Any]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        found = self._compiled.get(bucket.key)
        if found is not None and found[0] == bucket.checksum:
            bucket.code = found[1]

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._compiled[bucket.key] = (bucket.checksum, bucket.code)


def share_compiled_templates() -> None:
    Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": SharedTemplates()}
