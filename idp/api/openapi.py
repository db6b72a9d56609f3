"""The OpenAPI 3.1 document of the management API, kept by hand beside the views it describes
(tests/api validate it with openapi-spec-validator and run schemathesis against it: every
response must match it, and none may be a 5xx). The claims a service may write are built from the
data dictionary at request time, so an operator's new claim is documented as soon as declared."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from idp.api.blueprint import bp
from idp.api.parsing import EMAIL_PATTERN, MAX_ROW_ID, PHONE_PATTERN
from idp.identity.catalogue import (
    ADDRESS_PARTS,
    MAX_TEXT,
    ClaimDeclaration,
    catalogue,
)
from idp.identity.models import AccountStatus, IdentityKind
from idp.oidc.context import issuer
from idp.scopes import PERSONAL_DATA, VOUCH_FOR_PHONES

SCOPE_DESCRIPTIONS = {
    "idp:accounts.read": "search and read accounts and their merges (each read is audited)",
    "idp:accounts.write": "create accounts, update claims, disable/enable, link/unlink a phone "
                          "or an email (phones unverified); never an administrator's ways in",
    "idp:merges": "preview, merge, undo and list merges; never of an administrator's account",
    "idp:sessions": "list and end sessions, list and revoke refresh-token families",
    "idp:events.read": "the event delivery backlog",
    VOUCH_FOR_PHONES: "with idp:accounts.write: link or create a phone as verified, which the "
                      "IdP did not check (a verified phone signs in by SMS): grant it only to a "
                      "service that checked the phone itself",
    PERSONAL_DATA: "with idp:accounts.read or idp:accounts.write: phones and emails in full in "
                   "the answers (identities, claims, profile); without it they are masked "
                   "(`138****6183`, `a***@example.com`). Reads that show them are audited with "
                   "`personal_data: true`",
}

PROBLEM = {"$ref": "#/components/schemas/Problem"}
NULLABLE_STRING = {"type": ["string", "null"]}
TIMESTAMP = {"type": "string", "format": "date-time"}
# Integer primary keys (32-bit on PostgreSQL): a path id past this is 404.
ROW_ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_ROW_ID}
PHONE = {"type": "string", "minLength": 1, "maxLength": 32, "pattern": PHONE_PATTERN,
         "description": "a phone number, E.164 (`+8613800138000`) or national (mainland China: "
                        "`138 0013 8000`); a number libphonenumber finds invalid is a 400 "
                        "`invalid_phone` problem"}
EMAIL = {"type": "string", "minLength": 3, "maxLength": 254, "pattern": EMAIL_PATTERN}
SUB = {"name": "sub", "in": "path", "required": True,
       "description": "the account's `sub`, or a merged-away alias of it",
       "schema": {"type": "string", "minLength": 1, "maxLength": 64}}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"},
            "request_id": {"type": "string"},
        },
    },
    "Identity": {
        "type": "object",
        "required": ["id", "kind", "namespace", "value", "verified", "verified_by", "created_at"],
        "properties": {
            "id": ROW_ID_SCHEMA,
            "kind": {"type": "string", "enum": list(IdentityKind.ALL)},
            "namespace": {"type": "string", "description": "the WeChat appid of an openid"},
            "value": {**NULLABLE_STRING, "description": "null for a password; a phone or an "
                      "email masked (`138****6183`, `a***@example.com`) unless the token holds "
                      "idp:accounts.personal_data"},
            "verified": {"type": "boolean"},
            "verified_by": NULLABLE_STRING,
            "created_at": TIMESTAMP,
        },
    },
    "Claim": {
        "type": "object",
        "required": ["name", "value", "source", "served", "updated_at"],
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "string", "description": "`phone_number` and `email` masked "
                      "unless the token holds idp:accounts.personal_data"},
            "source": {"type": "string",
                       "description": "user, admin, api (this API), website or wechat"},
            "served": {"type": "boolean", "description": "the value released as the claim"},
            "updated_at": TIMESTAMP,
        },
    },
    "Merge": {
        "type": "object",
        "required": ["id", "survivor", "merged", "rule", "actor", "created_at", "undone_at"],
        "properties": {
            "id": ROW_ID_SCHEMA, "survivor": {"type": "string"},
            "merged": {"type": "string"}, "rule": {"type": "string"},
            "actor": {"type": "string"}, "created_at": TIMESTAMP,
            "undone_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "Account": {
        "type": "object",
        "required": ["sub", "status", "created_via", "created_at", "profile_updated_at",
                     "merged_into", "identities", "claims", "profile", "merges"],
        "properties": {
            "sub": {"type": "string"},
            "status": {"type": "string", "enum": [
                AccountStatus.ACTIVE, AccountStatus.DISABLED, AccountStatus.MERGED,
                AccountStatus.DELETED]},
            "created_via": {"type": "string"},
            "created_at": TIMESTAMP,
            "profile_updated_at": TIMESTAMP,
            "merged_into": NULLABLE_STRING,
            "identities": {"type": "array", "items": {"$ref": "#/components/schemas/Identity"}},
            "claims": {"type": "array", "items": {"$ref": "#/components/schemas/Claim"}},
            "profile": {"type": "object", "description": "each claim's served value, typed as "
                        "the data dictionary declares it (the conflict rule chose the source); "
                        "`phone_number` and `email` masked unless the token holds "
                        "idp:accounts.personal_data"},
            "merges": {"type": "array", "items": {"$ref": "#/components/schemas/Merge"}},
        },
    },
}

# The JSON Schema of a value a service may write, by the claim's declared type; the catalogue's
# validators have the last word (a value they refuse is a 400 problem naming the claim).
TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
MONTH_DAY = r"(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
VALUE_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": TEXT,
    "url": {**TEXT, "format": "uri", "pattern": r"^https?://[^\s/]+\S*$",
            "description": "http(s) URL"},
    "integer": {"type": "integer", "minimum": -(2**53) + 1, "maximum": 2**53 - 1},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date", "pattern": rf"^\d{{4}}-{MONTH_DAY}$"},
    "gender": {"type": "string", "minLength": 1, "maxLength": 32, "pattern": r"\S",
               "description": "female, male, or another value (OIDC Core §5.1)"},
    "birthdate": {"type": "string", "pattern": rf"^\d{{4}}(-{MONTH_DAY})?$",
                  "description": "YYYY-MM-DD (a real date), 0000-MM-DD or YYYY "
                                 "(OIDC Core §5.1)"},
    "address": {"type": "object", "additionalProperties": False, "minProperties": 1,
                "description": "OIDC Core §5.1.1",
                "properties": {part: TEXT for part in ADDRESS_PARTS}},
}


def claims_update_schema() -> dict[str, Any]:
    """Every claim whose writers include `api`; null removes what this API said of it."""
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "claims of the data dictionary a service may write (source `api`); "
                       "null removes the API's value",
        "properties": {claim.name: _nullable(claim) for claim in catalogue().claims.values()
                       if "api" in claim.writers},
    }


def _nullable(claim: ClaimDeclaration) -> dict[str, Any]:
    schema = VALUE_SCHEMAS[claim.type]
    described = {"description": f"{claim.type}, released by `{claim.scope}`. "
                                f"{claim.description}".strip()}
    return {"oneOf": [{**schema, **described}, {"type": "null"}]}


ACCOUNT = {"$ref": "#/components/schemas/Account"}
MERGE = {"$ref": "#/components/schemas/Merge"}
MERGE_REQUEST = {
    "type": "object", "required": ["survivor", "merged", "reason"],
    "description": "neither account may be an administrator's (403 `administrator_account`)",
    "properties": {"survivor": {"type": "string", "maxLength": 64},
                   "merged": {"type": "string", "maxLength": 64},
                   "reason": {"type": "string", "minLength": 1, "maxLength": 255}},
}
VERIFIED = {"type": "boolean", "default": False,
            "description": f"true: the service vouches for the phone, which is linked verified "
                           f"(a verified phone signs in by SMS); needs the scope "
                           f"{VOUCH_FOR_PHONES} (else 403 insufficient_scope)"}
CREATE_REQUEST = {
    "type": "object", "required": ["phone"], "properties": {
        "phone": PHONE, "phone_verified": VERIFIED,
        "claims": {"$ref": "#/components/schemas/ClaimsUpdate"}},
}
LINK_REQUEST = {
    "description": "a phone (unverified unless vouched for) or an email (unverified); never to "
                   "an administrator's account (403 `administrator_account`)",
    "oneOf": [
        {"type": "object", "required": ["kind", "value"], "properties": {
            "kind": {"const": IdentityKind.PHONE}, "value": PHONE, "verified": VERIFIED}},
        {"type": "object", "required": ["kind", "value"], "properties": {
            "kind": {"const": IdentityKind.EMAIL}, "value": EMAIL,
            "verified": {"const": False}}},
    ],
}
IF_MATCH = {"name": "If-Match", "in": "header", "required": True,
            "description": "the account's ETag, or `*`; compared strongly (RFC 9110 §13.1.1): "
                           "a weak tag (`W/\"…\"`) matches nothing (412)",
            "schema": {"type": "string", "minLength": 1}}


def _json(schema: dict[str, Any], description: str = "OK", **headers: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description, "content": {"application/json": {"schema": schema}}
    }
    if headers:
        response["headers"] = {name: {"schema": {"type": "string"}} for name in headers}
    return response


def _operation(
    scope: str, summary: str, responses: dict[str, Any], *, parameters: list[Any] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"client": [scope]}],
        "parameters": parameters or [],
        "responses": {
            **responses,
            "default": {"description": "an RFC 9457 problem",
                        "content": {"application/problem+json": {"schema": PROBLEM}}},
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": body}}}
    return operation


def document() -> dict[str, Any]:
    read, write = "idp:accounts.read", "idp:accounts.write"
    sessions, merges = "idp:sessions", "idp:merges"
    identity_id = {"name": "identity_id", "in": "path", "required": True, "schema": ROW_ID_SCHEMA}
    handle = {"name": "handle", "in": "path", "required": True,
              "schema": {"type": "string", "maxLength": 64}}
    family = {"name": "family", "in": "path", "required": True,
              "schema": {"type": "string", "maxLength": 64}}
    merge_id = {"name": "merge_id", "in": "path", "required": True, "schema": ROW_ID_SCHEMA}
    with_etag = _json(ACCOUNT, "the account", ETag=True)
    return {
        "openapi": "3.1.0",
        "info": {"title": "IdP management API", "version": "1.0.0",
                 "description": "Accounts, merges and sessions for the company's services. "
                                "Phones and emails in the answers are masked (`138****6183`, "
                                "`a***@example.com`) unless the token holds "
                                "idp:accounts.personal_data; a search by a full phone finds "
                                "the account either way."},
        "servers": [{"url": issuer() + "/api/v1"}],
        "components": {
            "schemas": {**SCHEMAS, "ClaimsUpdate": claims_update_schema()},
            "securitySchemes": {
                "client": {
                    "type": "oauth2",
                    "description": "client_credentials tokens; an admin grants the scopes",
                    "flows": {"clientCredentials": {
                        "tokenUrl": issuer() + "/oauth/token",
                        "scopes": SCOPE_DESCRIPTIONS,
                    }},
                },
            },
        },
        "paths": {
            "/accounts": {
                "get": _operation(read, "Search accounts by any identifier", {
                    "200": _json({"type": "object", "required": ["accounts", "next_cursor"],
                                  "properties": {"accounts": {"type": "array", "items": ACCOUNT},
                                                 "next_cursor": NULLABLE_STRING}})},
                    parameters=[
                        {"name": "q", "in": "query",
                         "schema": {"type": "string", "maxLength": 255}},
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ]),
                "post": _operation(write, "Create an account with a phone", {
                    "201": _json(ACCOUNT, "created", ETag=True, Location=True)},
                    body=CREATE_REQUEST),
            },
            "/accounts/{sub}": {
                "get": _operation(read, "Read an account", {"200": with_etag}, parameters=[SUB]),
            },
            "/accounts/{sub}/claims": {
                "patch": _operation(write, "Update profile claims (If-Match required)",
                                    {"200": with_etag},
                                    body={"$ref": "#/components/schemas/ClaimsUpdate"},
                                    parameters=[SUB, IF_MATCH]),
            },
            "/accounts/{sub}/disable": {
                "post": _operation(write, "Disable an account", {"200": with_etag},
                                   parameters=[SUB]),
            },
            "/accounts/{sub}/enable": {
                "post": _operation(write, "Enable an account", {"200": with_etag},
                                   parameters=[SUB]),
            },
            "/accounts/{sub}/identities": {
                "post": _operation(write, "Link a phone or an email", {
                    "201": with_etag}, parameters=[SUB], body=LINK_REQUEST),
            },
            "/accounts/{sub}/identities/{identity_id}": {
                "delete": _operation(write, "Unlink an identity (engine rules apply; never an "
                                            "administrator's)",
                                     {"200": with_etag}, parameters=[SUB, identity_id]),
            },
            "/accounts/{sub}/sessions": {
                "get": _operation(sessions, "List live IdP sessions", {"200": _json({
                    "type": "object", "required": ["sessions"], "properties": {"sessions": {
                        "type": "array", "items": {"type": "object", "properties": {
                            "handle": {"type": "string"}, "channel": {"type": "string"},
                            "amr": {"type": "array", "items": {"type": "string"}},
                            "created_at": TIMESTAMP, "expires_at": TIMESTAMP}}}}})},
                    parameters=[SUB]),
            },
            "/accounts/{sub}/sessions/{handle}": {
                "delete": _operation(sessions, "End a session (back-channel logout follows)",
                                     {"204": {"description": "ended"}},
                                     parameters=[SUB, handle]),
            },
            "/accounts/{sub}/refresh-families": {
                "get": _operation(sessions, "List refresh-token families", {"200": _json({
                    "type": "object", "required": ["families"], "properties": {"families": {
                        "type": "array", "items": {"type": "object", "properties": {
                            "family": {"type": "string"}, "client_id": {"type": "string"},
                            "scope": {"type": "string"}, "revoked": {"type": "boolean"},
                            "issued_at": TIMESTAMP, "last_issued_at": TIMESTAMP}}}}})},
                    parameters=[SUB]),
            },
            "/accounts/{sub}/refresh-families/{family}": {
                "delete": _operation(sessions, "Revoke a refresh-token family",
                                     {"204": {"description": "revoked"}},
                                     parameters=[SUB, family]),
            },
            "/accounts/{sub}/merges": {
                "get": _operation(read, "An account's merges", {"200": _json({
                    "type": "object", "required": ["merges"],
                    "properties": {"merges": {"type": "array", "items": MERGE}}})},
                    parameters=[SUB]),
            },
            "/merges": {
                "get": _operation(merges, "Merge history, newest first", {"200": _json({
                    "type": "object", "required": ["merges"],
                    "properties": {"merges": {"type": "array", "items": MERGE}}})},
                    parameters=[{"name": "sub", "in": "query",
                                 "schema": {"type": "string", "maxLength": 64}}]),
                "post": _operation(merges, "Merge two accounts", {"201": _json(MERGE, "merged")},
                                   body=MERGE_REQUEST),
            },
            "/merges/preview": {
                "post": _operation(merges, "Whether the rules allow a merge; changes nothing", {
                    "200": _json({"type": "object",
                                  "required": ["survivor", "merged", "allowed", "refusal"],
                                  "properties": {
                                      "survivor": {"type": "string"},
                                      "merged": {"type": "string"},
                                      "allowed": {"type": "boolean"},
                                      "refusal": {"type": ["object", "null"]},
                                      "moving_identities": {"type": "array"}}})},
                    body=MERGE_REQUEST),
            },
            "/events/status": {
                "get": _operation("idp:events.read", "Event delivery backlog per sink", {
                    "200": _json({"type": "object", "required": ["sinks"], "properties": {
                        "sinks": {"type": "array", "items": {
                            "type": "object",
                            "required": ["sink", "pending", "retrying", "dead", "lag_seconds"],
                            "properties": {
                                "sink": {"type": "string", "enum": ["push", "amqp"]},
                                "pending": {"type": "integer"}, "retrying": {"type": "integer"},
                                "dead": {"type": "integer"}, "lag_seconds": {"type": "number"},
                                "oldest_pending_at": {"type": ["string", "null"]}}}}}})}),
            },
            "/merges/{merge_id}/undo": {
                "post": _operation(merges, "Undo a merge", {"200": _json(MERGE, "undone")},
                                   parameters=[merge_id]),
            },
        },
    }


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(document())
