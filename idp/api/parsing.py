"""Parsing what a service sends the management API: JSON bodies (objects, no lone surrogate),
claims as the data dictionary checks an `api` write, phones, emails, query arguments, cursors,
If-Match. Each refusal is a problem document; the OpenAPI document states the same rules
(`PHONE_PATTERN`, `EMAIL_PATTERN`, `MAX_ROW_ID`), so schema and behaviour agree."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from flask import request

from idp.api.blueprint import holds_scope, insufficient_scope
from idp.api.problems import ApiProblem
from idp.identity.catalogue import ClaimRefused, catalogue, check_write
from idp.identity.phones import InvalidPhoneNumber, normalize_phone
from idp.input_guard import any_string
from idp.scopes import VOUCH_FOR_PHONES

CLAIM_WRITER = "api"  # the writer and the source of what the company's services say
# The largest id of an Integer column (32-bit on PostgreSQL): a larger path id names nothing,
# and asking the database for it fails (PostgreSQL's range, SQLite's 64 bits): 404 from routing.
MAX_ROW_ID = 2**31 - 1
ROW_ID_ROUTE = f"int(max={MAX_ROW_ID})"
# A UTF-16 surrogate alone is no character (I-JSON, RFC 7493 §2.1): no database stores one.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
PHONE_PATTERN = r"^\+?[0-9(][0-9 ().-]*$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"


def strong_etags(header: str) -> set[str]:
    """If-Match compares strongly (RFC 9110 §13.1.1, §13.2.1): a weak tag matches nothing."""
    tags = (part.strip() for part in header.split(","))
    return {tag for tag in tags if tag and not tag.startswith("W/")}


def json_object() -> dict[str, Any]:
    if not request.is_json:
        raise ApiProblem(415, "json_required", "send application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiProblem(400, "invalid_body", "the body must be a JSON object")
    if holds_lone_surrogate(body):
        raise ApiProblem(400, "invalid_body",
                         "the body holds a lone UTF-16 surrogate, which is no character")
    return body


def holds_lone_surrogate(value: Any) -> bool:
    """Anywhere in a parsed JSON value, keys included (JSON's `\\ud800` escape gives one)."""
    return any_string(value, lambda text: LONE_SURROGATE.search(text) is not None)


def vouched_for(raw: Any) -> bool:
    """Whether the service vouches for the phone it sends: only with `idp:phones.vouch`."""
    if not isinstance(raw, bool):
        raise ApiProblem(400, "invalid_body", "verified must be true or false")
    if raw and not holds_scope(VOUCH_FOR_PHONES):
        raise insufficient_scope(VOUCH_FOR_PHONES)
    return raw


def claims_from(raw: Any, allow_null: bool = False) -> dict[str, Any]:
    """The claims asked for, each checked as the catalogue checks an `api` write (null clears
    one when `allow_null`); the first refused is a problem naming the claim and the reason."""
    if not isinstance(raw, dict):
        raise ApiProblem(400, "invalid_claims", "claims must be an object")
    for name, value in raw.items():
        if value is None and allow_null:
            continue
        if value in ("", {}) or value is None:
            raise ApiProblem(400, "invalid_claims", f"{str(name)[:32]} must have a value",
                             claim=str(name)[:32], reason="empty")
        try:
            check_write(name, value, CLAIM_WRITER)
        except ClaimRefused as refused:
            raise claim_problem(refused) from refused
    return dict(raw)


def claim_problem(refused: ClaimRefused) -> ApiProblem:
    """RFC 9457 §3.2 extension members `claim` and `reason` say which claim and why."""
    name = refused.name[:32]
    if refused.code == "unknown":
        writable = [c.name for c in catalogue().claims.values() if CLAIM_WRITER in c.writers]
        return ApiProblem(400, "invalid_claims",
                          f"unknown claim {name!r}; known: {', '.join(writable)}",
                          claim=name, reason="unknown claim")
    if refused.code == "writer":
        return ApiProblem(403, "claim_not_writable", f"{name}: {refused.reason}",
                          claim=name, reason=refused.reason)
    return ApiProblem(400, "invalid_claims", f"{name}: {refused.reason}",
                      claim=name, reason=refused.reason)


def phone_from(raw: Any) -> str:
    if not isinstance(raw, str) or len(raw) > 32 or not re.fullmatch(PHONE_PATTERN, raw):
        raise ApiProblem(400, "invalid_phone", "phone must be a phone number (E.164)")
    try:
        return normalize_phone(raw)
    except InvalidPhoneNumber as error:
        raise ApiProblem(400, "invalid_phone", "not a valid phone number") from error


def email_from(raw: Any) -> str:
    if not isinstance(raw, str) or len(raw) > 254 or not re.fullmatch(EMAIL_PATTERN, raw):
        raise ApiProblem(400, "invalid_email", "value must be an email address")
    return raw.lower()


def text_arg(name: str, required: bool = True) -> str:
    value = request.args.get(name, "")
    if "\x00" in value or len(value) > 255 or LONE_SURROGATE.search(value):
        raise ApiProblem(400, "invalid_query",
                         f"{name} is too long or holds a NUL byte or a lone surrogate")
    if required and not value:
        raise ApiProblem(400, "invalid_query", f"{name} is required")
    return value.strip()


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiProblem(400, "invalid_query", f"{name} must be an integer from {low} to {high}")
    return int(raw)


def encode_cursor(sub: str) -> str:
    return base64.urlsafe_b64encode(sub.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        padded = (cursor + "=" * (-len(cursor) % 4)).encode("ascii")
        decoded = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError) as error:
        raise ApiProblem(400, "invalid_cursor", "not a cursor this API gave out") from error
    if not decoded or len(decoded) > 64 or "\x00" in decoded:
        raise ApiProblem(400, "invalid_cursor", "not a cursor this API gave out")
    return decoded

